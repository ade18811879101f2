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
  // The terminal client and the frame codec are TypeScript sources in the workspace.
  transpilePackages: ['@berth/terminal', '@berth/protocol'],
  // Those sources import each other as `./x.js` (Node ESM style) while the files are `./x.ts`.
  // Turbopack cannot map that yet (vercel/next.js#82945), so the app builds with webpack
  // (`next build --webpack`), which can.
  experimental: { extensionAlias: { '.js': ['.ts', '.tsx', '.js'] } },
  // The monorepo root holds the lockfile and node_modules; say so instead of letting Next guess.
  outputFileTracingRoot: root,
  turbopack: { root },
};
