#!/usr/bin/env node
// Copies what the control plane needs at run time into an output directory: the workspaces of
// `berth` (CLI, control plane, their @berth/* packages) and the production dependency closure
// resolved from package-lock.json exactly as Node resolves it, nothing else. This replaces
// `npm ci --omit=dev`, which would still install every workspace's dependencies (the web
// app's Next.js among them) and needs a registry; this needs only an installed checkout.
// The CLI runs TypeScript through tsx, which is a runtime dependency of @berth/cli, so the
// closure keeps tsx and esbuild (and the platform binary that is installed).
//
// usage: node prune.mjs --root <repo> --out <dir> [--print]
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const root = resolve(opt('--root') ?? '.');
const out = opt('--out');
// The gateway rides along: the docker provider mounts its bundle and node-pty (built for this
// very node binary) into every environment from the control plane's own files.
const ENTRY = ['node_modules/@berth/cli', 'node_modules/@berth/control-plane', 'node_modules/@berth/gateway'];
// Files outside the workspaces that the control plane reads at run time (the docker provider
// derives the base image tag from the base image's build script).
const EXTRA = ['docker/base'];
// Root files the CLI reads at start (bin/berth.js registers tsx with the root tsconfig).
const ROOT_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.base.json'];

const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages;

function resolveDep(from, name) {
  let p = from;
  for (;;) {
    const cand = `${p ? `${p}/` : ''}node_modules/${name}`;
    if (lock[cand]) return cand;
    if (!p) return null;
    const i = p.lastIndexOf('/node_modules/');
    p = i >= 0 ? p.slice(0, i) : '';
  }
}

const keep = new Set();
const queue = ENTRY.filter((p) => lock[p]);
while (queue.length) {
  const path = queue.pop();
  if (keep.has(path)) continue;
  const e = lock[path];
  if (!e) throw new Error(`prune: ${path} is not in package-lock.json; run npm install`);
  keep.add(path);
  if (e.link) {
    queue.push(e.resolved);
    continue;
  }
  const required = Object.keys(e.dependencies ?? {});
  const optional = [...Object.keys(e.optionalDependencies ?? {}), ...Object.keys(e.peerDependencies ?? {})];
  for (const name of required) {
    const r = resolveDep(path, name);
    if (!r) throw new Error(`prune: ${path} needs ${name}, which package-lock.json does not resolve`);
    queue.push(r);
  }
  for (const name of optional) {
    const r = resolveDep(path, name);
    if (r && existsSync(join(root, r))) queue.push(r);
  }
}

const paths = [...keep].filter((p) => existsSync(join(root, p))).sort();
if (args.includes('--print') || !out) {
  for (const p of paths) process.stdout.write(`${p}\n`);
  process.exit(0);
}

const dest = resolve(out);
mkdirSync(dest, { recursive: true });
for (const f of ROOT_FILES) if (existsSync(join(root, f))) cpSync(join(root, f), join(dest, f));
const isWorkspace = (p) => !p.startsWith('node_modules/') && !p.includes('/node_modules/');
for (const p of paths) {
  const src = join(root, p);
  const to = join(dest, p);
  mkdirSync(dirname(to), { recursive: true });
  if (lstatSync(src).isSymbolicLink()) {
    symlinkSync(readlinkSync(src), to);
    continue;
  }
  cpSync(src, to, {
    recursive: true,
    verbatimSymlinks: true,
    // Nested node_modules are entries of their own (copied only if kept); tests never ship.
    filter: (s) => {
      const rel = relative(src, s);
      if (rel === 'node_modules' || rel.startsWith('node_modules/')) return false;
      return !(isWorkspace(p) && /\.test\.ts$/.test(s));
    },
  });
}
// Executables: only links into kept packages (berth, tsx).
const bin = join(root, 'node_modules/.bin');
mkdirSync(join(dest, 'node_modules/.bin'), { recursive: true });
for (const name of readdirSync(bin)) {
  const target = readlinkSync(join(bin, name));
  const pkgPath = relative(root, resolve(bin, target));
  if (paths.some((p) => pkgPath.startsWith(`${p}/`)))
    symlinkSync(target, join(dest, 'node_modules/.bin', name));
}
for (const p of EXTRA)
  if (existsSync(join(root, p))) cpSync(join(root, p), join(dest, p), { recursive: true });
// The static web app, when built (served at `/`); without it pages say how to build it.
if (existsSync(join(root, 'apps/web/out')))
  cpSync(join(root, 'apps/web/out'), join(dest, 'apps/web/out'), { recursive: true });
process.stderr.write(`prune: ${paths.length} packages into ${dest}\n`);
