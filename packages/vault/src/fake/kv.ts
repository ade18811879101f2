import { HttpError, badRequest, isoTime } from './util.js';

/** KV v2 storage for one mount, answering in Vault's response shapes. */

interface Version {
  data: Record<string, unknown>;
  createdMs: number;
  deletedMs: number | undefined;
  destroyed: boolean;
}

interface Entry {
  versions: Map<number, Version>;
  current: number;
  createdMs: number;
  updatedMs: number;
  customMetadata: Record<string, string> | null;
}

export class KvV2Store {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly now: () => number) {}

  write(path: string, body: Record<string, unknown>): Record<string, unknown> {
    const data = body.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw badRequest('no data provided');
    const options = (body.options ?? {}) as { cas?: unknown };
    const now = this.now();
    const entry = this.entries.get(path) ?? {
      versions: new Map<number, Version>(),
      current: 0,
      createdMs: now,
      updatedMs: now,
      customMetadata: null,
    };
    if (options.cas !== undefined && Number(options.cas) !== entry.current) {
      throw badRequest('check-and-set parameter did not match the current version');
    }
    entry.current += 1;
    entry.updatedMs = now;
    entry.versions.set(entry.current, {
      data: structuredClone(data as Record<string, unknown>),
      createdMs: now,
      deletedMs: undefined,
      destroyed: false,
    });
    this.entries.set(path, entry);
    return this.versionMetadata(entry, entry.current);
  }

  /** GET data: 404 `{"errors":[]}` when absent; 404 with metadata when that version is deleted. */
  read(path: string, version: number): { status: number; body: Record<string, unknown> } {
    const entry = this.entries.get(path);
    const v = version > 0 ? version : (entry?.current ?? 0);
    const ver = entry?.versions.get(v);
    if (!entry || !ver) throw new HttpError(404, []);
    const metadata = this.versionMetadata(entry, v);
    if (ver.destroyed || (ver.deletedMs !== undefined && ver.deletedMs <= this.now())) {
      return { status: 404, body: { data: { data: null, metadata } } };
    }
    return { status: 200, body: { data: { data: structuredClone(ver.data), metadata } } };
  }

  /** DELETE data: soft-deletes the latest version. */
  deleteLatest(path: string): void {
    const entry = this.entries.get(path);
    const ver = entry?.versions.get(entry.current);
    if (ver) ver.deletedMs = this.now();
  }

  metadata(path: string): Record<string, unknown> {
    const entry = this.entries.get(path);
    if (!entry) throw new HttpError(404, []);
    const versions: Record<string, unknown> = {};
    for (const [n, v] of entry.versions) {
      versions[String(n)] = {
        created_time: isoTime(v.createdMs),
        deletion_time: v.deletedMs ? isoTime(v.deletedMs) : '',
        destroyed: v.destroyed,
      };
    }
    return {
      cas_required: false,
      created_time: isoTime(entry.createdMs),
      current_version: entry.current,
      custom_metadata: entry.customMetadata,
      delete_version_after: '0s',
      max_versions: 0,
      oldest_version: 0,
      updated_time: isoTime(entry.updatedMs),
      versions,
    };
  }

  deleteAll(path: string): void {
    this.entries.delete(path);
  }

  /** LIST metadata/<prefix>: immediate children, folders with a trailing slash. */
  list(prefix: string): string[] {
    const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    const keys = new Set<string>();
    for (const path of this.entries.keys()) {
      if (!path.startsWith(p)) continue;
      const rest = path.slice(p.length);
      const slash = rest.indexOf('/');
      keys.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    if (keys.size === 0) throw new HttpError(404, []);
    return [...keys].sort();
  }

  private versionMetadata(entry: Entry, n: number): Record<string, unknown> {
    const v = entry.versions.get(n);
    return {
      created_time: v ? isoTime(v.createdMs) : '',
      custom_metadata: entry.customMetadata,
      deletion_time: v?.deletedMs ? isoTime(v.deletedMs) : '',
      destroyed: v?.destroyed ?? false,
      version: n,
    };
  }
}
