import { createPlatform } from '@tsvisor/platform-api';
import { runConformance } from '@tsvisor/platform-api/conformance';
import '../src/index.js';

runConformance({ name: 'kvm conformance', create: () => createPlatform('kvm') });
