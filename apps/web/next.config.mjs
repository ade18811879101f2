import { fileURLToPath } from 'node:url';

// A static export: the control plane serves `out/` at `/` on its own port, so the app is plain
// files plus client components that call /api/v1 on the same origin. No Next server at run time.
const root = fileURLToPath(new URL('../..', import.meta.url));

/** @type {import('next').NextConfig} */
export default {
  output: 'export',
  reactStrictMode: true,
  poweredByHeader: false,
  // No image optimizer without a Next server.
  images: { unoptimized: true },
  // The monorepo root holds the lockfile and node_modules; say so instead of letting Next guess.
  outputFileTracingRoot: root,
  turbopack: { root },
};
