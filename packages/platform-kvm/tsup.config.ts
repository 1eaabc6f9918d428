import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['cjs', 'esm'],
  dts: true,
  shims: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['@tsvisor/platform-api', 'bindings', 'debug'],
});
