/**
 * The platform registry. A platform package calls `registerPlatform` when it is loaded; the sentry
 * and runsc find platforms with `lookupPlatform`. First-party packages are found by name with
 * require.resolve; third-party modules are loaded only when named explicitly (the
 * TSVISOR_PLATFORM_MODULES environment variable, `--platform-module`, or `loadPlatformModule`).
 *
 * The state lives on globalThis under a registered symbol, so the CommonJS and ES module builds of
 * this package, or two installed copies of it, share one registry.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Platform, PlatformDescriptor, PlatformOptions, ProbeResult } from './platform.js';

/** First-party platform packages, tried in this order by discovery. */
export const FIRST_PARTY_PLATFORMS = [
  '@tsvisor/platform-kvm',
  '@tsvisor/platform-systrap',
  '@tsvisor/platform-ptrace',
] as const;

/** Environment variable listing extra platform modules (package names or paths), separated by commas. */
export const PLATFORM_MODULES_ENV = 'TSVISOR_PLATFORM_MODULES';

interface RegistryState {
  readonly descriptors: Map<string, PlatformDescriptor>;
  readonly probes: Map<string, ProbeResult>;
  readonly loadedModules: Set<string>;
  /** Module specifiers that failed to load, with the error message. */
  readonly loadErrors: Map<string, string>;
  discovered: boolean;
}

const STATE_KEY = Symbol.for('tsvisor.platform-api.registry');

function state(): RegistryState {
  const holder = globalThis as unknown as Record<symbol, RegistryState | undefined>;
  let current = holder[STATE_KEY];
  if (current === undefined) {
    current = {
      descriptors: new Map(),
      probes: new Map(),
      loadedModules: new Set(),
      loadErrors: new Map(),
      discovered: false,
    };
    holder[STATE_KEY] = current;
  }
  return current;
}

/** Thrown when a platform cannot be found or cannot run here. The message is one line for users. */
export class PlatformUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlatformUnavailableError';
  }
}

/** Registers a platform. Registering the same name twice keeps the first descriptor. */
export function registerPlatform(descriptor: PlatformDescriptor): void {
  if (typeof descriptor?.name !== 'string' || descriptor.name === '' || descriptor.name === 'auto') {
    throw new TypeError(`registerPlatform: descriptor.name must be a non-empty string other than "auto", got ${String(descriptor?.name)}`);
  }
  for (const method of ['probe', 'create', 'rank'] as const) {
    if (typeof descriptor[method] !== 'function') {
      throw new TypeError(`registerPlatform: descriptor "${descriptor.name}" must have a ${method}() method`);
    }
  }
  const registry = state();
  if (!registry.descriptors.has(descriptor.name)) {
    registry.descriptors.set(descriptor.name, descriptor);
  }
}

const thisFile = fileURLToPath(import.meta.url);
const localRequire = createRequire(thisFile);

function requireFrom(): NodeRequire[] {
  const bases = [thisFile, path.join(process.cwd(), 'noop.js')];
  if (process.argv[1]) bases.push(path.resolve(process.argv[1]));
  return bases.map((base) => createRequire(base));
}

/**
 * Loads a platform module by package name or path; the module registers itself when loaded.
 * Throws PlatformUnavailableError when it cannot be loaded.
 */
export function loadPlatformModule(specifier: string): void {
  const registry = state();
  if (registry.loadedModules.has(specifier)) return;
  const target = specifier.startsWith('.') ? path.resolve(specifier) : specifier;
  let lastError: unknown;
  for (const req of requireFrom()) {
    try {
      req(req.resolve(target));
      registry.loadedModules.add(specifier);
      return;
    } catch (error) {
      lastError = error;
    }
  }
  const message = lastError instanceof Error ? lastError.message.split('\n')[0] : String(lastError);
  registry.loadErrors.set(specifier, message);
  throw new PlatformUnavailableError(`cannot load platform module "${specifier}": ${message}`);
}

/**
 * Loads every installed first-party platform package and the modules named in
 * TSVISOR_PLATFORM_MODULES. Runs once; packages that are not installed are skipped silently,
 * packages that are installed but fail to load are remembered for `listPlatforms`.
 */
export function discoverPlatforms(): void {
  const registry = state();
  if (registry.discovered) return;
  registry.discovered = true;

  for (const name of FIRST_PARTY_PLATFORMS) {
    let resolved: string | undefined;
    for (const req of requireFrom()) {
      try {
        resolved = req.resolve(name);
        break;
      } catch {
        // Not installed next to this base; try the next one.
      }
    }
    if (resolved === undefined) continue;
    try {
      localRequire(resolved);
      registry.loadedModules.add(name);
    } catch (error) {
      registry.loadErrors.set(name, error instanceof Error ? error.message.split('\n')[0] : String(error));
    }
  }

  const extra = process.env[PLATFORM_MODULES_ENV];
  if (extra) {
    for (const specifier of extra.split(',').map((s) => s.trim()).filter(Boolean)) {
      try {
        loadPlatformModule(specifier);
      } catch {
        // Recorded in loadErrors; listPlatforms and lookupPlatform report it.
      }
    }
  }
}

/** Returns the probe result of a registered platform, probing once per process. */
export function probePlatform(descriptor: PlatformDescriptor): ProbeResult {
  const registry = state();
  let result = registry.probes.get(descriptor.name);
  if (result === undefined) {
    try {
      result = descriptor.probe();
    } catch (error) {
      result = { available: false, reason: `probe failed: ${error instanceof Error ? error.message : String(error)}` };
    }
    registry.probes.set(descriptor.name, result);
  }
  return result;
}

export interface PlatformListing {
  readonly name: string;
  readonly description: string;
  readonly available: boolean;
  readonly reason: string;
  readonly rank: number;
}

/** Lists registered platforms, best first, with whether each can run here and why not. */
export function listPlatforms(): PlatformListing[] {
  discoverPlatforms();
  const listings: PlatformListing[] = [];
  for (const descriptor of state().descriptors.values()) {
    const probe = probePlatform(descriptor);
    listings.push({
      name: descriptor.name,
      description: descriptor.description,
      available: probe.available,
      reason: probe.reason,
      rank: descriptor.rank(),
    });
  }
  listings.sort((a, b) => b.rank - a.rank);
  return listings;
}

/** Modules that were found but failed to load, with their error messages. */
export function platformLoadErrors(): ReadonlyMap<string, string> {
  return state().loadErrors;
}

function describeInstalled(): string {
  const listings = listPlatforms();
  const parts = listings.map((p) => (p.available ? `${p.name} (available)` : `${p.name} (unavailable: ${p.reason})`));
  for (const [specifier, message] of platformLoadErrors()) parts.push(`${specifier} (failed to load: ${message})`);
  return parts.length === 0 ? 'no platform is installed; install @tsvisor/platform-ptrace' : `installed: ${parts.join('; ')}`;
}

export interface LookupResult {
  readonly descriptor: PlatformDescriptor;
  /** Why this platform was chosen, for `--debug` output. */
  readonly reason: string;
}

/**
 * Finds a platform by name, or the best available one for 'auto'. Throws PlatformUnavailableError,
 * whose message lists what is installed, when the name is unknown or the platform cannot run here.
 */
export function lookupPlatform(name: string): LookupResult {
  discoverPlatforms();
  const registry = state();

  if (name === 'auto') {
    const best = listPlatforms().find((p) => p.available);
    if (best === undefined) {
      throw new PlatformUnavailableError(`no platform can run on this host; ${describeInstalled()}`);
    }
    const skipped = listPlatforms().filter((p) => p.rank > best.rank && !p.available);
    const reason = skipped.length === 0
      ? `${best.name} is the fastest installed platform`
      : `${best.name} chosen because ${skipped.map((p) => `${p.name} is unavailable (${p.reason})`).join(', ')}`;
    return { descriptor: registry.descriptors.get(best.name)!, reason };
  }

  const descriptor = registry.descriptors.get(name);
  if (descriptor === undefined) {
    throw new PlatformUnavailableError(`unknown platform "${name}"; ${describeInstalled()}`);
  }
  const probe = probePlatform(descriptor);
  if (!probe.available) {
    throw new PlatformUnavailableError(`platform "${name}" cannot run here: ${probe.reason}`);
  }
  return { descriptor, reason: `${name} was requested` };
}

/** Looks up a platform (see `lookupPlatform`) and creates an instance of it. */
export function createPlatform(name = 'auto', options?: PlatformOptions): Platform {
  return lookupPlatform(name).descriptor.create(options);
}

/** Forgets every registration. For tests of the registry itself. */
export function resetRegistryForTests(): void {
  const registry = state();
  registry.descriptors.clear();
  registry.probes.clear();
  registry.loadedModules.clear();
  registry.loadErrors.clear();
  registry.discovered = false;
}
