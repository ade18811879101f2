import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { generatedKeyFiles, replicaSharedSettings } from './shared-settings.js';

const dir = fileURLToPath(new URL('../../infra/k8s/', import.meta.url));
const readme = fileURLToPath(new URL('../../infra/README.md', import.meta.url));

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are free-form; fields are asserted below */
async function manifests(): Promise<Array<{ file: string; doc: any }>> {
  const out: Array<{ file: string; doc: any }> = [];
  for (const file of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const d of parseAllDocuments(await readFile(dir + file, 'utf8'))) {
      expect(d.errors, file).toEqual([]);
      out.push({ file, doc: d.toJS() });
    }
  }
  return out;
}

const byKind = async (kind: string) =>
  (await manifests()).filter((m) => m.doc?.kind === kind).map((m) => m.doc);

describe('infra/k8s', () => {
  it('parses, and every object has apiVersion, kind and a name', async () => {
    const all = await manifests();
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const { file, doc } of all) {
      expect(doc.apiVersion, file).toMatch(/^[a-z0-9.\-/]+$/i);
      expect(doc.kind, file).toBeTruthy();
      if (doc.kind !== 'Kustomization') expect(doc.metadata?.name, file).toBeTruthy();
    }
  });

  it('kustomization lists every manifest except the secret example', async () => {
    const [k] = await byKind('Kustomization');
    const files = (await readdir(dir)).filter(
      (f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && !f.includes('example'),
    );
    expect([...(k.resources as string[])].sort()).toEqual(files.sort());
  });

  it('the Deployment has 2+ replicas, probes on /healthz and /readyz, and a restricted security context', async () => {
    const [d] = await byKind('Deployment');
    expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
    const pod = d.spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    const [c] = pod.containers;
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.startupProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext.privileged).toBeUndefined();
    // A read-only root needs writable scratch space for tsx's cache and the data dir.
    const mounts = (c.volumeMounts as Array<{ mountPath: string }>).map((m) => m.mountPath);
    expect(mounts).toEqual(expect.arrayContaining(['/tmp', '/var/lib/berth']));
    const secretEnv = Object.fromEntries(
      (c.env as Array<{ name: string; valueFrom?: any }>).map((e) => [e.name, e.valueFrom?.secretKeyRef]),
    );
    expect(secretEnv.DATABASE_URL).toMatchObject({ name: 'berth', key: 'DATABASE_URL' });
    expect(secretEnv.BERTH_SIGNING_KEYS).toMatchObject({ name: 'berth', key: 'BERTH_SIGNING_KEYS' });
    expect(c.envFrom).toContainEqual({ configMapRef: { name: 'berth' } });
  });

  it('the Service and PodDisruptionBudget select the Deployment’s pods', async () => {
    const [d] = await byKind('Deployment');
    const labels = d.spec.template.metadata.labels;
    const [svc] = await byKind('Service');
    expect(labels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports[0].targetPort).toBe('http');
    const [pdb] = await byKind('PodDisruptionBudget');
    expect(labels).toMatchObject(pdb.spec.selector.matchLabels);
    expect(pdb.spec.minAvailable).toBeLessThan(d.spec.replicas);
  });

  it('every key the control plane would generate per pod comes from the Secret, the same for all replicas', async () => {
    // Keys generated into the data dir (an emptyDir here) on first start differ by pod: each must
    // have a setting, documented as shared by replicas.
    const generated = await generatedKeyFiles();
    expect(generated.map((g) => g.file)).toEqual(
      expect.arrayContaining(['signing-keys.json', 'webhook.key']),
    );
    const shared = await replicaSharedSettings();
    for (const g of generated) expect(shared, `<data dir>/keys/${g.file}`).toContain(g.variable);
    expect(shared).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'BERTH_SIGNING_KEYS', 'BERTH_WEBHOOK_KEY']),
    );

    const [d] = await byKind('Deployment');
    const [c] = d.spec.template.spec.containers;
    const env = new Map(
      (c.env as Array<{ name: string; value?: string; valueFrom?: any }>).map((e) => [e.name, e]),
    );
    const [cm] = await byKind('ConfigMap');
    const example = (await byKind('Secret'))[0];
    const createCommand =
      (await readFile(readme, 'utf8')).match(/kubectl -n berth create secret[^`]*/)?.[0] ?? '';
    for (const name of shared) {
      expect(env.get(name)?.valueFrom?.secretKeyRef, name).toEqual({ name: 'berth', key: name });
      expect(env.get(name)?.value, name).toBeUndefined();
      expect(Object.keys(cm.data), name).not.toContain(name);
      expect(Object.keys(example.stringData), `secret.example.yaml: ${name}`).toContain(name);
      expect(createCommand, `infra/README.md secret command: ${name}`).toContain(`${name}=`);
    }
  });

  it('runs environments on a provider browsers and every replica reach (not local), with its settings', async () => {
    const [cm] = await byKind('ConfigMap');
    const [secret] = await byKind('Secret');
    const [d] = await byKind('Deployment');
    const [c] = d.spec.template.spec.containers;
    // What a pod would start with: the ConfigMap, the Secret's keys the Deployment maps, nothing else.
    const fromSecret = Object.fromEntries(
      (c.env as Array<{ name: string; valueFrom?: any }>)
        .filter((e) => e.valueFrom?.secretKeyRef)
        .map((e) => [e.name, secret.stringData[e.valueFrom.secretKeyRef.key] as string]),
    );
    const { loadConfig } = await import('../../apps/control-plane/src/config.js');
    const config = loadConfig({ ...cm.data, ...fromSecret });
    expect(config.providers).toEqual(['modal']);
    expect(config.providers).not.toContain('local');
    expect(fromSecret).toMatchObject({
      MODAL_TOKEN_ID: expect.any(String),
      MODAL_TOKEN_SECRET: expect.any(String),
    });
    expect(Object.keys(cm.data)).not.toContain('MODAL_TOKEN_ID');
    expect(Object.keys(cm.data)).not.toContain('MODAL_TOKEN_SECRET');
  });

  it('the ConfigMap holds no secret', async () => {
    const [cm] = await byKind('ConfigMap');
    expect(Object.keys(cm.data)).not.toContain('DATABASE_URL');
    expect(Object.keys(cm.data)).not.toContain('BERTH_SIGNING_KEYS');
    expect(cm.data.BERTH_HOST).toBe('0.0.0.0');
  });
});
