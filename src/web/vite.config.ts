// The web dashboard (/app/) and the partner portal (/portal/), built by `npm run build` into
// dist/web and served by refgraph itself (src/http/web-assets.ts). Hashed file names under
// /assets/ are cached by browsers for good; nothing is loaded from another host.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: here('../../dist/web'),
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: true,
    // Inline nothing as data: URLs, so the Content-Security-Policy can stay 'self' only.
    assetsInlineLimit: 0,
    rolldownOptions: {
      input: { app: here('app/index.html'), portal: here('portal/index.html') },
    },
  },
});
