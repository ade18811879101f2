import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { JwtAuthMount } from './jwt-auth.js';
import { KvV2Store } from './kv.js';
import { PolicyParseError, capabilitiesFor, parsePolicy, type Capability, type Policy } from './policy.js';
import { DEFAULT_POLICY, TokenStore, WrapStore, type TokenEntry } from './tokens.js';
import {
  HttpError,
  aclDenied,
  badRequest,
  envelope,
  mountAccessor,
  newAccessor,
  newToken,
  newUuid,
  noRoute,
  parseDuration,
} from './util.js';

/**
 * A FAKE Vault for tests: an in-memory loopback HTTP server speaking the slice of Vault's HTTP
 * API that Berth uses, with Vault's paths, response shapes and error strings, so the same test
 * setup code runs against a real Vault. Never use it to hold real secrets.
 */

export interface FakeVaultOptions {
  /** Root token for admin setup; random `hvs.…` when omitted. */
  rootToken?: string;
  /** KV v2 mounts present from the start (like a dev server's `secret/`); default `['secret']`. */
  kvMounts?: string[];
  /** Serve HTTPS with this key and certificate (PEM) instead of plain HTTP. */
  tls?: { key: string; cert: string };
}

export interface FakeVault {
  /** e.g. `http://127.0.0.1:54321` */
  readonly address: string;
  readonly rootToken: string;
  /** The fake's clock (ms since epoch): wall clock plus every {@link advanceClock}. */
  now(): number;
  /** Moves the fake's clock forward so TTL expiry can be tested without sleeping. */
  advanceClock(seconds: number): void;
  /** Method, path and namespace of every request seen (no bodies, no tokens). */
  readonly requests: ReadonlyArray<{ method: string; path: string; namespace: string | undefined }>;
  close(): Promise<void>;
}

interface AuthMount {
  type: string;
  accessor: string;
  uuid: string;
  description: string;
  jwt: JwtAuthMount | undefined;
}

interface Reply {
  status: number;
  body?: Record<string, unknown>;
}

export async function startFakeVault(opts: FakeVaultOptions = {}): Promise<FakeVault> {
  const core = new FakeVaultCore(opts);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void core.handle(req, res);
  };
  const server: Server = opts.tls
    ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler)
    : createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    address: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    rootToken: core.rootToken,
    now: () => core.now(),
    advanceClock: (seconds) => {
      core.offsetMs += seconds * 1000;
    },
    requests: core.requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

class FakeVaultCore {
  offsetMs = 0;
  readonly rootToken: string;
  readonly requests: Array<{ method: string; path: string; namespace: string | undefined }> = [];
  private readonly tokens = new TokenStore(() => this.now());
  private readonly wrapped = new WrapStore(() => this.now());
  private readonly policies = new Map<string, Policy>();
  private readonly authMounts = new Map<string, AuthMount>();
  private readonly kvMounts = new Map<string, { store: KvV2Store; accessor: string; uuid: string }>();

  constructor(opts: FakeVaultOptions) {
    this.rootToken = opts.rootToken ?? newToken();
    this.tokens.addRoot(this.rootToken);
    this.policies.set(DEFAULT_POLICY, parsePolicy(DEFAULT_POLICY, ''));
    this.authMounts.set('token/', {
      type: 'token',
      accessor: mountAccessor('token'),
      uuid: newUuid(),
      description: 'token based credentials',
      jwt: undefined,
    });
    for (const m of opts.kvMounts ?? ['secret']) this.mountKv(`${m.replace(/\/+$/, '')}/`);
  }

  now(): number {
    return Date.now() + this.offsetMs;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.route(req);
    } catch (err) {
      reply =
        err instanceof HttpError
          ? { status: err.status, body: { errors: err.errors } }
          : { status: 500, body: { errors: [`1 error occurred:\n\t* ${(err as Error).message}\n\n`] } };
    }
    res.writeHead(reply.status, reply.body ? { 'Content-Type': 'application/json' } : {});
    res.end(reply.body ? JSON.stringify(reply.body) : undefined);
  }

  private async route(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (!url.pathname.startsWith('/v1/')) throw new HttpError(404, []);
    const path = decodeURIComponent(url.pathname.slice('/v1/'.length)).replace(/\/+$/, '');
    let method = (req.method ?? 'GET').toUpperCase();
    if (method === 'PUT') method = 'POST';
    if (method === 'GET' && url.searchParams.get('list') === 'true') method = 'LIST';
    const namespace = header(req, 'x-vault-namespace');
    this.requests.push({ method, path, namespace });
    const body = await readJson(req);
    const wrapTtl = parseDuration(header(req, 'x-vault-wrap-ttl'), 'X-Vault-Wrap-TTL');
    const tokenHeader = header(req, 'x-vault-token');

    // Unauthenticated endpoints, as in Vault.
    if (path === 'sys/health') {
      return {
        status: 200,
        body: {
          initialized: true,
          sealed: false,
          standby: false,
          version: '0.0.0-fake',
          cluster_name: 'fake-vault',
        },
      };
    }
    if (path === 'sys/wrapping/lookup' && method === 'POST')
      return { status: 200, body: this.wrapped.lookup(String(body.token ?? tokenHeader ?? '')) };
    if (path === 'sys/wrapping/unwrap' && method === 'POST') return this.unwrap(body, tokenHeader);
    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login && method === 'POST') {
      const mount = this.authMounts.get(`${login[1] ?? ''}/`);
      if (mount?.jwt)
        return this.maybeWrap(await this.jwtLogin(`${login[1] ?? ''}/`, mount, body), path, wrapTtl);
    }

    const token = this.tokens.resolve(tokenHeader);
    if (path === 'auth/token/lookup-self' && method === 'GET')
      return { status: 200, body: envelope({ data: this.tokens.lookup(token) }) };
    if (path === 'auth/token/renew-self' && method === 'POST')
      return { status: 200, body: this.tokens.renew(token, body) };
    if (path === 'auth/token/revoke-self' && method === 'POST') {
      this.tokens.revoke(token.id);
      return { status: 204 };
    }
    if (path === 'sys/wrapping/wrap' && method === 'POST') {
      if (wrapTtl <= 0) throw badRequest('fake vault: sys/wrapping/wrap needs an X-Vault-Wrap-TTL header');
      return this.maybeWrap({ status: 200, body: envelope({ data: body }) }, path, wrapTtl);
    }

    this.authorize(token, method, path);
    return this.maybeWrap(await this.dispatch(method, path, body, url), path, wrapTtl);
  }

  private async dispatch(
    method: string,
    path: string,
    body: Record<string, unknown>,
    url: URL,
  ): Promise<Reply> {
    if (path === 'sys/auth' && method === 'GET') {
      const data: Record<string, unknown> = {};
      for (const [p, m] of this.authMounts)
        data[p] = {
          type: m.type,
          accessor: m.accessor,
          uuid: m.uuid,
          description: m.description,
          local: false,
          seal_wrap: false,
          external_entropy_access: false,
          options: null,
          config: { default_lease_ttl: 0, max_lease_ttl: 0, token_type: 'default-service' },
        };
      return { status: 200, body: { ...data, ...envelope({ data }) } };
    }
    const sysAuth = /^sys\/auth\/(.+)$/.exec(path);
    if (sysAuth) return this.sysAuth(method, `${sysAuth[1] ?? ''}/`, body);
    if (path === 'sys/mounts' && method === 'GET') {
      const data: Record<string, unknown> = {};
      for (const [p, m] of this.kvMounts)
        data[p] = { type: 'kv', accessor: m.accessor, uuid: m.uuid, options: { version: '2' } };
      return { status: 200, body: { ...data, ...envelope({ data }) } };
    }
    const sysMount = /^sys\/mounts\/(.+)$/.exec(path);
    if (sysMount) return this.sysMount(method, `${sysMount[1] ?? ''}/`, body);
    const pol = /^sys\/(?:policies\/acl|policy)\/(.+)$/.exec(path);
    if (pol) return this.sysPolicy(method, pol[1] ?? '', body);

    const authCfg = /^auth\/(.+?)\/(config|role\/(.+)|role)$/.exec(path);
    if (authCfg) {
      const mountPath = `${authCfg[1] ?? ''}/`;
      const mount = this.authMounts.get(mountPath);
      if (mount?.jwt) return this.jwtAdmin(method, mount.jwt, authCfg[2] ?? '', authCfg[3], body);
    }

    for (const [mountPath, kv] of this.kvMounts) {
      if (!path.startsWith(mountPath)) continue;
      const rest = path.slice(mountPath.length);
      const data = /^data\/(.+)$/.exec(rest);
      const meta = /^metadata(?:\/(.*))?$/.exec(rest);
      if (data) {
        const p = data[1] ?? '';
        if (method === 'GET') {
          const r = kv.store.read(p, Number(url.searchParams.get('version') ?? 0));
          return { status: r.status, body: { ...envelope({ data: r.body.data, mount_type: 'kv' }) } };
        }
        if (method === 'POST')
          return { status: 200, body: envelope({ data: kv.store.write(p, body), mount_type: 'kv' }) };
        if (method === 'DELETE') {
          kv.store.deleteLatest(p);
          return { status: 204 };
        }
      }
      if (meta) {
        const p = meta[1] ?? '';
        if (method === 'LIST')
          return { status: 200, body: envelope({ data: { keys: kv.store.list(p) }, mount_type: 'kv' }) };
        if (method === 'GET')
          return { status: 200, body: envelope({ data: kv.store.metadata(p), mount_type: 'kv' }) };
        if (method === 'DELETE') {
          kv.store.deleteAll(p);
          return { status: 204 };
        }
      }
    }
    throw noRoute(path);
  }

  // --- ACLs and wrapping --------------------------------------------------------------

  private authorize(token: TokenEntry, method: string, path: string): void {
    if (token.root) return;
    const policies = token.policies
      .map((p) => this.policies.get(p))
      .filter((p): p is Policy => p !== undefined);
    const caps = capabilitiesFor(policies, path, this.tokens.templateContext(token));
    const needed: Capability[] =
      method === 'GET'
        ? ['read']
        : method === 'LIST'
          ? ['list']
          : method === 'DELETE'
            ? ['delete']
            : ['create', 'update'];
    if (caps.has('deny') || !needed.some((c) => caps.has(c))) throw aclDenied();
  }

  private maybeWrap(reply: Reply, path: string, ttl: number): Reply {
    if (ttl <= 0 || reply.status !== 200 || !reply.body) return reply;
    return { status: 200, body: this.wrapped.wrap(reply.body, path, ttl) };
  }

  private unwrap(body: Record<string, unknown>, tokenHeader: string | undefined): Reply {
    if (typeof body.token === 'string' && body.token !== '') {
      // Unwrapping someone else's wrapping token needs a valid token of one's own.
      this.tokens.resolve(tokenHeader);
      return { status: 200, body: this.wrapped.unwrap(body.token) };
    }
    return { status: 200, body: this.wrapped.unwrap(tokenHeader ?? '') };
  }

  // --- auth methods ----------------------------------------------------------------------

  private async jwtLogin(mountPath: string, mount: AuthMount, body: Record<string, unknown>): Promise<Reply> {
    const r = await (mount.jwt as JwtAuthMount).login(body, Math.floor(this.now() / 1000));
    const t = this.tokens.issue({
      policies: r.role.token_policies,
      noDefault: r.role.token_no_default_policy,
      ttl: r.role.token_ttl,
      maxTtl: r.role.token_max_ttl,
      metadata: { role: r.roleName, ...r.metadata },
      displayName: `${mountPath.replace(/\/$/, '').replace(/\//g, '-')}-${r.aliasName}`,
      alias: { mountAccessor: mount.accessor, name: r.aliasName },
      authMount: mountPath,
    });
    return { status: 200, body: envelope({ auth: this.tokens.authBlock(t, t.ttl) }) };
  }

  private async jwtAdmin(
    method: string,
    jwt: JwtAuthMount,
    what: string,
    roleName: string | undefined,
    body: Record<string, unknown>,
  ): Promise<Reply> {
    if (what === 'config') {
      if (method === 'GET') return { status: 200, body: envelope({ data: jwt.readConfig() }) };
      if (method === 'POST') {
        await jwt.writeConfig(body);
        return { status: 204 };
      }
    } else if (what === 'role' && method === 'LIST') {
      if (jwt.roles.size === 0) throw new HttpError(404, []);
      return { status: 200, body: envelope({ data: { keys: [...jwt.roles.keys()].sort() } }) };
    } else if (roleName !== undefined) {
      const name = roleName.toLowerCase();
      if (method === 'POST') {
        jwt.writeRole(name, body);
        return { status: 204 };
      }
      if (method === 'GET') {
        const role = jwt.roles.get(name);
        if (!role) throw new HttpError(404, []);
        return { status: 200, body: envelope({ data: { ...role } }) };
      }
      if (method === 'DELETE') {
        jwt.roles.delete(name);
        return { status: 204 };
      }
    }
    throw new HttpError(405, ['1 error occurred:\n\t* unsupported operation\n\n']);
  }

  private sysAuth(method: string, mountPath: string, body: Record<string, unknown>): Reply {
    if (method === 'POST') {
      if (this.authMounts.has(mountPath)) throw badRequest(`path is already in use at ${mountPath}`);
      const type = String(body.type ?? '');
      if (type !== 'jwt' && type !== 'oidc')
        throw badRequest(`fake vault: auth method "${type}" is not supported (only jwt)`);
      this.authMounts.set(mountPath, {
        type,
        accessor: mountAccessor(type),
        uuid: newUuid(),
        description: String(body.description ?? ''),
        jwt: new JwtAuthMount(),
      });
      return { status: 204 };
    }
    if (method === 'DELETE') {
      if (mountPath === 'token/') throw badRequest('token credential backend cannot be disabled');
      this.tokens.revokeByMount(mountPath);
      this.authMounts.delete(mountPath);
      return { status: 204 };
    }
    throw new HttpError(405, ['1 error occurred:\n\t* unsupported operation\n\n']);
  }

  private mountKv(mountPath: string): void {
    this.kvMounts.set(mountPath, {
      store: new KvV2Store(() => this.now()),
      accessor: `kv_${newAccessor().slice(0, 8)}`,
      uuid: newUuid(),
    });
  }

  private sysMount(method: string, mountPath: string, body: Record<string, unknown>): Reply {
    if (method === 'POST') {
      if (this.kvMounts.has(mountPath)) throw badRequest(`path is already in use at ${mountPath}`);
      const options = (body.options ?? {}) as { version?: unknown };
      const isV2 = body.type === 'kv-v2' || (body.type === 'kv' && String(options.version) === '2');
      if (!isV2)
        throw badRequest('fake vault: only KV version 2 mounts are supported (type=kv, options.version=2)');
      this.mountKv(mountPath);
      return { status: 204 };
    }
    if (method === 'DELETE') {
      this.kvMounts.delete(mountPath);
      return { status: 204 };
    }
    throw new HttpError(405, ['1 error occurred:\n\t* unsupported operation\n\n']);
  }

  private sysPolicy(method: string, name: string, body: Record<string, unknown>): Reply {
    if (method === 'POST') {
      if (name === 'root') throw badRequest('cannot update "root" policy');
      try {
        this.policies.set(name, parsePolicy(name, String(body.policy ?? body.rules ?? '')));
      } catch (err) {
        if (err instanceof PolicyParseError) throw badRequest(err.message);
        throw err;
      }
      return { status: 204 };
    }
    if (method === 'GET') {
      const p = this.policies.get(name);
      if (!p) throw new HttpError(404, []);
      return { status: 200, body: envelope({ data: { name, policy: p.raw } }) };
    }
    if (method === 'DELETE') {
      if (name === 'default' || name === 'root') throw badRequest(`cannot delete "${name}" policy`);
      this.policies.delete(name);
      return { status: 204 };
    }
    throw new HttpError(405, ['1 error occurred:\n\t* unsupported operation\n\n']);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw badRequest(`failed to parse JSON input: ${(err as Error).message}`);
  }
}
