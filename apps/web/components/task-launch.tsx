'use client';

import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState, type FormEvent } from 'react';
import { EnvPicker, choiceBody, useEnvChoice, type EnvChoice } from '@/components/env-picker';
import { ErrorNotice, Loadable } from '@/components/status';
import { ApiError, api, newIdempotencyKey, toApiError, type Environment, type NewTask } from '@/lib/api';
import { splitCommand } from '@/lib/argv';
import { useSession } from '@/lib/session';
import { useApi, type Loaded } from '@/lib/use-api';

/** Launches a task and opens its page. One idempotency key per intent, so a double tap runs it once. */
export function useLaunch() {
  const router = useRouter();
  const { expired } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  async function launch(
    argv: string[],
    where: EnvChoice,
    key: string,
    extra: Pick<NewTask, 'timeoutSeconds' | 'secrets'> = {},
  ) {
    setBusy(true);
    setError(null);
    try {
      const { task } = await api.tasks.create({ command: argv, ...extra, ...choiceBody(where) }, key);
      router.push(`/tasks/view?id=${task.id}`);
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      else setError(e);
      setBusy(false);
    }
  }
  return { busy, error, setError, launch };
}

/**
 * The timeout as typed: empty is the server's limit. Anything numeric goes to the API as a number,
 * so its own rule (whole seconds above zero) answers with its hint; only text that is no number at
 * all is refused here, because JSON could not carry it.
 */
export function parseTimeout(text: string): { seconds?: number } | { error: ApiError } {
  const t = text.trim();
  if (!t) return {};
  if (!/^[+-]?\d+(\.\d+)?$/.test(t))
    return {
      error: new ApiError(
        400,
        'bad_timeout',
        'the timeout is not a number of seconds',
        'type whole seconds (600 is ten minutes), or leave it empty for the server’s limit',
      ),
    };
  return { seconds: Number(t) };
}

/**
 * Which of the user's secret references the task gets, picked by env var name. Nothing is picked
 * until the user says so: what is ticked is exactly what the process will see. Names only; the
 * values stay in the user's Vault and are read by the gateway when the task starts.
 */
function SecretPicker({ picked, onChange }: { picked: string[]; onChange: (names: string[]) => void }) {
  const refs = useApi(async () => {
    const [{ settings }, page] = await Promise.all([
      api.secrets.settings(),
      api.secrets.refs({ limit: 100 }),
    ]);
    return { configured: settings !== null, refs: page.items, more: page.nextCursor !== null };
  }, 'launch-secrets');
  return (
    <fieldset className="field grow" data-testid="launch-secrets">
      <legend>Secrets</legend>
      <Loadable state={refs} onRetry={refs.reload}>
        {(r) =>
          !r.configured || r.refs.length === 0 ? (
            <p className="muted small" data-testid="launch-secrets-empty">
              {r.configured ? 'You have no secret references.' : 'Your Vault is not set up.'}{' '}
              <Link href="/secrets">Add references on the Secrets page</Link> to give tasks values from your
              own Vault.
            </p>
          ) : (
            <div className="stack">
              <div className="checks">
                {r.refs.map((ref) => (
                  <label key={ref.id} className="check">
                    <input
                      type="checkbox"
                      name="secret"
                      value={ref.env}
                      checked={picked.includes(ref.env)}
                      onChange={(e) =>
                        onChange(
                          e.target.checked ? [...picked, ref.env] : picked.filter((n) => n !== ref.env),
                        )
                      }
                    />
                    <span>
                      <code>{ref.env}</code>{' '}
                      <span className="muted small">
                        {ref.path} → {ref.key}
                      </span>
                    </span>
                  </label>
                ))}
              </div>
              <p className="muted small">
                {r.more ? 'Showing your first 100 references. ' : ''}Ticked ones are read from your Vault when
                the task starts and shown as <code>***</code> in its output.
              </p>
            </div>
          )
        }
      </Loadable>
    </fieldset>
  );
}

export function LaunchForm({ ready }: { ready: Loaded<Environment[]> }) {
  const [line, setLine] = useState('');
  const [timeout, setTimeoutText] = useState('');
  const [secrets, setSecrets] = useState<string[]>([]);
  const [key, setKey] = useState(newIdempotencyKey);
  const where = useEnvChoice(ready);
  const { busy, error, setError, launch } = useLaunch();
  const fresh = () => setKey(newIdempotencyKey()); // a different launch gets a different key

  function submit(e: FormEvent) {
    e.preventDefault();
    const r = splitCommand(line);
    if ('error' in r) {
      setError(new ApiError(400, 'bad_command', r.error, 'close the quote, or escape it with a backslash'));
      return;
    }
    const t = parseTimeout(timeout);
    if ('error' in t) {
      setError(t.error);
      return;
    }
    if (where.choice)
      void launch(r.argv, where.choice, key, {
        secrets,
        ...(t.seconds === undefined ? {} : { timeoutSeconds: t.seconds }),
      });
  }

  return (
    <form className="card stack" onSubmit={submit} aria-labelledby="launch-h">
      <h2 id="launch-h">Run a task</h2>
      {error ? <ErrorNotice error={error} /> : null}
      <div className="launch-row">
        <label className="field grow">
          <span className="sr-only">Command</span>
          <input
            name="command"
            className="mono"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            placeholder="npm test"
            value={line}
            onChange={(e) => {
              setLine(e.target.value);
              fresh();
            }}
          />
        </label>
        <button type="submit" className="btn btn-primary" disabled={busy || !line.trim() || !where.choice}>
          {busy ? 'Starting…' : 'Run'}
        </button>
      </div>
      <p className="muted small">
        Runs the program directly with its arguments (quotes work as in a shell). For pipes or{' '}
        <code>&amp;&amp;</code>, run a shell: <code>sh -c &apos;make &amp;&amp; make test&apos;</code>.
      </p>
      <EnvPicker ready={ready} state={where} onChange={fresh} idPrefix="launch" />
      <div className="form-row">
        <label className="field timeout-field" htmlFor="launch-timeout">
          <span>Timeout in seconds</span>
          <input
            id="launch-timeout"
            name="timeout"
            inputMode="numeric"
            autoComplete="off"
            placeholder="server's limit"
            value={timeout}
            onChange={(e) => {
              setTimeoutText(e.target.value);
              fresh();
            }}
          />
        </label>
        <SecretPicker
          picked={secrets}
          onChange={(names) => {
            setSecrets(names);
            fresh();
          }}
        />
      </div>
    </form>
  );
}
