import { createPlatform } from '@tsvisor/platform-api';
import { runConformance } from '@tsvisor/platform-api/conformance';
import '../src/index.js';

runConformance({ name: 'systrap conformance', create: () => createPlatform('systrap') });
