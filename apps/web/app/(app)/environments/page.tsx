'use client';

import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState, type FormEvent } from 'react';
import { EnvActionButtons, useEnvActions } from '@/components/env-actions';
import { EnvStateBadge, describeSpec } from '@/components/env-ui';
import { LoadMore } from '@/components/load-more';
import { Empty, ErrorNotice, Loadable } from '@/components/status';
import { api, toApiError, type ApiError, type Environment, type NewEnvironment } from '@/lib/api';
import { relative } from '@/lib/format';
import { useLive } from '@/lib/live';
import { useSession } from '@/lib/session';
import { usePagedList } from '@/lib/use-paged';

type SetupKind = 'none' | 'berthYaml' | 'devcontainer';

const SETUP_PLACEHOLDER: Record<Exclude<SetupKind, 'none'>, string> = {
  berthYaml: 'setup:\n  - npm ci',
  devcontainer: '{\n  "image": "node:22",\n  "postCreateCommand": "npm ci"\n}',
};

// No endpoint lists the providers this server has enabled; these are the ones Berth ships, and
// the API names the enabled ones in its error if the choice is not one of them.
const KNOWN_PROVIDERS = ['local', 'docker', 'modal'];

// Sizes by name rather than numbers to type; the server checks them against your quota and the
// provider's limits and says which one refused. 1 CPU and 1 GB is what providers give by default.
const SIZES = {
  default: { label: 'Default (1 CPU, 1 GB)', resources: undefined },
  medium: { label: 'Medium (2 CPUs, 4 GB)', resources: { cpu: 2, memoryMb: 4096 } },
  large: { label: 'Large (4 CPUs, 8 GB)', resources: { cpu: 4, memoryMb: 8192 } },
} as const;
type Size = keyof typeof SIZES;

function CreateForm() {
  const router = useRouter();
  const { expired } = useSession();
  const [name, setName] = useState('');
  const [provider, setProvider] = useState('local');
  const [image, setImage] = useState('');
  const [repoUrl, setRepoUrl] = useState('');
  const [repoRef, setRepoRef] = useState('');
  const [setup, setSetup] = useState<SetupKind>('none');
  const [setupText, setSetupText] = useState('');
  const [size, setSize] = useState<Size>('default');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const body: NewEnvironment = {};
    if (name.trim()) body.name = name.trim();
    if (provider.trim()) body.provider = provider.trim();
    if (image.trim()) body.image = image.trim();
    if (repoUrl.trim())
      body.repo = { url: repoUrl.trim(), ...(repoRef.trim() ? { ref: repoRef.trim() } : {}) };
    if (setup !== 'none' && setupText.trim()) body[setup] = setupText;
    const resources = SIZES[size].resources;
    if (resources) body.resources = { ...resources };
    setBusy(true);
    setError(null);
    try {
      const { environment } = await api.environments.create(body);
      router.push(`/environments/view?id=${environment.id}`);
    } catch (err) {
      const e2 = toApiError(err);
      if (e2.unauthorized) expired();
      else setError(e2);
      setBusy(false);
    }
  }

  return (
    <form className="card stack" onSubmit={(e) => void submit(e)} aria-labelledby="create-h">
      <h2 id="create-h">New environment</h2>
      {error ? <ErrorNotice error={error} /> : null}
      <div className="form-row">
        <label className="field grow">
          <span>Name</span>
          <input
            name="name"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            placeholder="generated when empty"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label className="field grow">
          <span>Provider</span>
          <input
            name="provider"
            list="provider-list"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            value={provider}
            onChange={(e) => setProvider(e.target.value)}
          />
          <datalist id="provider-list">
            {KNOWN_PROVIDERS.map((p) => (
              <option key={p} value={p} />
            ))}
          </datalist>
        </label>
        <label className="field grow">
          <span>Size</span>
          <select name="size" value={size} onChange={(e) => setSize(e.target.value as Size)}>
            {(Object.keys(SIZES) as Size[]).map((k) => (
              <option key={k} value={k}>
                {SIZES[k].label}
              </option>
            ))}
          </select>
        </label>
        <label className="field grow">
          <span>Image</span>
          <input
            name="image"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            placeholder="default base image"
            value={image}
            onChange={(e) => setImage(e.target.value)}
          />
        </label>
      </div>
      <div className="form-row">
        <label className="field grow">
          <span>Repository URL</span>
          <input
            name="repo"
            type="url"
            inputMode="url"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            placeholder="https://github.com/you/project.git"
            value={repoUrl}
            onChange={(e) => setRepoUrl(e.target.value)}
          />
        </label>
        <label className="field ref-field">
          <span>Branch or tag</span>
          <input
            name="ref"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            placeholder="default branch"
            value={repoRef}
            disabled={!repoUrl.trim()}
            onChange={(e) => setRepoRef(e.target.value)}
          />
        </label>
      </div>
      <fieldset className="field">
        <legend>Setup</legend>
        <div className="segmented" role="radiogroup" aria-label="Setup">
          {(
            [
              ['none', 'None'],
              ['berthYaml', 'berth.yaml'],
              ['devcontainer', 'devcontainer.json'],
            ] as const
          ).map(([k, label]) => (
            <label key={k} className={`segment${setup === k ? ' segment-on' : ''}`}>
              <input type="radio" name="setup" value={k} checked={setup === k} onChange={() => setSetup(k)} />
              {label}
            </label>
          ))}
        </div>
        {setup !== 'none' ? (
          <textarea
            name="setup-text"
            className="mono"
            rows={6}
            aria-label={setup === 'berthYaml' ? 'berth.yaml contents' : 'devcontainer.json contents'}
            spellCheck={false}
            autoCapitalize="none"
            autoCorrect="off"
            placeholder={SETUP_PLACEHOLDER[setup]}
            value={setupText}
            onChange={(e) => setSetupText(e.target.value)}
          />
        ) : null}
      </fieldset>
      <div className="row-wrap">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create environment'}
        </button>
      </div>
      <p className="muted small">
        The repository is cloned into <code>/workspace</code>. Setup runs once when it is built; a
        devcontainer.json may name its own image.
      </p>
    </form>
  );
}

function EnvRow({
  env,
  now,
  ask,
}: {
  env: Environment;
  now: number;
  ask: ReturnType<typeof useEnvActions>['ask'];
}) {
  return (
    <tr data-testid="env-row" data-env-id={env.id}>
      <td data-label="Name" className="cell-name">
        <Link href={`/environments/view?id=${env.id}`} className="task-link">
          {env.name}
        </Link>
      </td>
      <td data-label="State">
        <EnvStateBadge state={env.state} />
      </td>
      <td data-label="Provider">{env.provider}</td>
      <td data-label="From" className="cell-from">
        <span className="ellipsis" title={describeSpec(env.spec)}>
          {describeSpec(env.spec)}
        </span>
      </td>
      <td data-label="Created">{relative(env.createdAt, now)}</td>
      <td className="actions">
        <div className="row-wrap row-end">
          {env.state === 'ready' ? (
            <Link
              href={`/terminal?env=${env.id}`}
              className="btn btn-small btn-primary"
              aria-label={`Open a terminal in ${env.name}`}
            >
              Terminal
            </Link>
          ) : null}
          <EnvActionButtons env={env} ask={ask} />
        </div>
      </td>
    </tr>
  );
}

export default function EnvironmentsPage() {
  const paged = usePagedList((cursor) => api.environments.list({ limit: 50, cursor }), 'environments');
  const actions = useEnvActions((env) => paged.replace(env));
  const [now] = useState(() => Date.now());

  // A change notice for an environment: read it again; one created elsewhere (CLI, another tab)
  // joins the end of the list once every page is loaded.
  const { connected } = useLive(
    (c) => {
      if (c.kind !== 'environment') return;
      api.environments.get(c.id).then(
        ({ environment }) => paged.append(environment),
        () => undefined,
      );
    },
    () => paged.list.reload(),
  );

  return (
    <div className="stack-lg">
      <div className="page-head">
        <h1>Environments</h1>
        <p className="muted">
          Machines built from an image and a repository, with terminals.{' '}
          <span className={`live ${connected ? 'live-on' : ''}`} data-testid="live">
            {connected ? 'Live' : 'Connecting…'}
          </span>
        </p>
      </div>
      <CreateForm />
      <section className="stack" aria-labelledby="envs-h">
        <h2 id="envs-h">Your environments</h2>
        <Loadable state={paged.list} onRetry={paged.list.reload}>
          {(page) =>
            page.items.length === 0 ? (
              <Empty title="No environments yet">
                <p className="muted">Create one above; it is ready in seconds with the local provider.</p>
              </Empty>
            ) : (
              <div className="stack">
                <table className="table responsive" data-testid="env-table">
                  <thead>
                    <tr>
                      <th>Name</th>
                      <th>State</th>
                      <th>Provider</th>
                      <th>From</th>
                      <th>Created</th>
                      <th>
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((env) => (
                      <EnvRow key={env.id} env={env} now={now} ask={actions.ask} />
                    ))}
                  </tbody>
                </table>
                <LoadMore paged={paged} />
              </div>
            )
          }
        </Loadable>
      </section>
      {actions.dialog}
    </div>
  );
}
