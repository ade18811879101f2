/**
 * The fake Vault's ACL model: the `path "…" { capabilities = [...] }` subset of Vault's policy
 * HCL, `*` (trailing) and `+` (one segment) globs, Vault's most-specific-path-wins priority,
 * `deny`, and identity templating for entity aliases. Enough to test per-user templated paths;
 * not parameters, not sentinel, not JSON policies.
 */

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny';

const CAPABILITIES = new Set<string>(['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny']);

export interface PolicyRule {
  path: string;
  capabilities: Capability[];
}

export interface Policy {
  name: string;
  raw: string;
  rules: PolicyRule[];
}

export class PolicyParseError extends Error {}

export function parsePolicy(name: string, raw: string): Policy {
  const text = raw.replace(/^\s*(#|\/\/).*$/gm, '');
  const rules: PolicyRule[] = [];
  const blockRe = /path\s+"([^"]+)"\s*\{([^}]*)\}/g;
  let consumed = text;
  for (const m of text.matchAll(blockRe)) {
    const path = m[1] ?? '';
    const body = m[2] ?? '';
    const caps = /capabilities\s*=\s*\[([^\]]*)\]/.exec(body);
    const list = caps ? [...(caps[1] ?? '').matchAll(/"([^"]*)"/g)].map((c) => c[1] ?? '') : [];
    for (const c of list) {
      if (!CAPABILITIES.has(c))
        throw new PolicyParseError(`failed to parse policy: invalid capability "${c}"`);
    }
    rules.push({ path: path.replace(/^\/+/, ''), capabilities: list as Capability[] });
    consumed = consumed.replace(m[0], '');
  }
  if (consumed.trim() !== '') {
    throw new PolicyParseError(
      'failed to parse policy: fake vault understands only path "..." { capabilities = [...] } blocks',
    );
  }
  return { name, raw, rules };
}

/** What identity templates can resolve to for one token. */
export interface TemplateContext {
  entityId?: string;
  entityName?: string;
  /** mount accessor → alias name */
  aliases: Map<string, string>;
}

/** Returns undefined when a template cannot be resolved: Vault then ignores that path. */
export function renderTemplate(path: string, ctx: TemplateContext): string | undefined {
  let ok = true;
  const out = path.replace(/\{\{\s*([^}]+?)\s*\}\}/g, (_all, expr: string) => {
    const alias = /^identity\.entity\.aliases\.([^.]+)\.name$/.exec(expr);
    let v: string | undefined;
    if (alias) v = ctx.aliases.get(alias[1] ?? '');
    else if (expr === 'identity.entity.id') v = ctx.entityId;
    else if (expr === 'identity.entity.name') v = ctx.entityName;
    if (v === undefined) ok = false;
    return v ?? '';
  });
  return ok ? out : undefined;
}

function matches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith('*');
  const p = glob ? pattern.slice(0, -1) : pattern;
  const pSegs = p.split('/');
  const segs = path.split('/');
  if (!glob && pSegs.length !== segs.length) return false;
  if (glob && segs.length < pSegs.length) return false;
  for (let i = 0; i < pSegs.length; i++) {
    const ps = pSegs[i] as string;
    const s = segs[i] as string;
    const last = i === pSegs.length - 1;
    if (ps === '+') continue;
    if (glob && last) {
      if (!s.startsWith(ps)) return false;
    } else if (ps !== s) {
      return false;
    }
  }
  return true;
}

/** Vault's documented priority: returns > 0 when `a` is the more specific pattern. */
function comparePriority(a: string, b: string): number {
  const firstWild = (s: string): number => {
    const i = s.search(/[+*]/);
    return i === -1 ? Infinity : i;
  };
  if (firstWild(a) !== firstWild(b)) return firstWild(a) - firstWild(b);
  const aGlob = a.endsWith('*');
  const bGlob = b.endsWith('*');
  if (aGlob !== bGlob) return aGlob ? -1 : 1;
  const plus = (s: string): number => s.split('/').filter((x) => x === '+').length;
  if (plus(a) !== plus(b)) return plus(b) - plus(a);
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The capabilities a set of policies grants on `path` (already relative, e.g. `secret/data/x`). */
export function capabilitiesFor(policies: Policy[], path: string, ctx: TemplateContext): Set<Capability> {
  const byPattern = new Map<string, Set<Capability>>();
  for (const policy of policies) {
    for (const rule of policy.rules) {
      const pattern = renderTemplate(rule.path, ctx);
      if (pattern === undefined || !matches(pattern, path)) continue;
      const set = byPattern.get(pattern) ?? new Set<Capability>();
      for (const c of rule.capabilities) set.add(c);
      byPattern.set(pattern, set);
    }
  }
  let best: string | undefined;
  for (const pattern of byPattern.keys())
    if (best === undefined || comparePriority(pattern, best) > 0) best = pattern;
  const caps = best === undefined ? new Set<Capability>() : (byPattern.get(best) ?? new Set<Capability>());
  return caps.has('deny') ? new Set<Capability>(['deny']) : caps;
}
