// The sentry's native addon: host primitives that Node lacks. Each mechanism lives in its own file
// and adds its functions to the module's exports from an Init function declared here.
#pragma once

#include <napi.h>

#include <string>

// Each mechanism file defines one of these; addon.cc calls them all.
void InitMemoryFile(Napi::Env env, Napi::Object exports);
void InitHostFs(Napi::Env env, Napi::Object exports);

// Throws a JavaScript Error naming the failed host call and its errno, such as
// "memfd_create failed: ENOMEM (Cannot allocate memory)", with `code` set to the errno name.
void ThrowErrno(Napi::Env env, const char* call, int err);
