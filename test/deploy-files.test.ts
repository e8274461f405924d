// The deployment files (Dockerfile, .dockerignore, compose.yaml with deploy/compose/haproxy.cfg,
// the kustomize tree under deploy/k8s) cannot run on this machine: it has no container engine.
// This test checks them instead: every Kubernetes object against the API schemas
// (kubernetes-models), the kustomization's files and the names objects refer to, the probes,
// resources and security settings every Deployment needs, every environment variable against the
// config schema of the process it is set for, and the Dockerfile's commands, paths and SERVICE
// choices against the repository. Each check is a function of a file tree, so the last block
// feeds it broken copies of the real files and expects each to be caught.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as coreV1 from 'kubernetes-models/v1';
import { isOpenTelemetryVariable, isSubgraphVariable } from '@shop/config';
import { isGatewayVariable } from '@shop/gateway';
import { balancerConfig } from '@shop/stack';

/** The balancer's retry policy, as stack/src/haproxy.ts writes it for the rig: its defaults' lines and each backend's. */
const RETRY_POLICY = (() => {
  const lines = balancerConfig({ services: [{ name: 'x', bind: '0.0.0.0:1', servers: [] }] })
    .split('\n')
    .map((l) => l.trim());
  return {
    defaults: lines.filter((l) => /^(retries |retry-on |option redispatch|option http-buffer-request)/.test(l)),
    backend: lines.filter((l) => /^(acl (names_mutation|query_text) |http-request disable-l7-retry)/.test(l)),
  };
})();

const REPO_ROOT = path.resolve(__dirname, '..');

/** The repository's files as the checks see them: the disk, with some files replaced (or removed with `null`). */
class Tree {
  constructor(private readonly overrides: ReadonlyMap<string, string | null> = new Map()) {}

  with(file: string, text: string | null): Tree {
    return new Tree(new Map([...this.overrides, [file, text]]));
  }

  read(file: string): string | undefined {
    const key = path.posix.normalize(file);
    if (this.overrides.has(key)) return this.overrides.get(key) ?? undefined;
    const full = path.join(REPO_ROOT, key);
    return existsSync(full) && statSync(full).isFile() ? readFileSync(full, 'utf8') : undefined;
  }

  exists(file: string): boolean {
    const key = path.posix.normalize(file);
    if (this.overrides.has(key)) return this.overrides.get(key) !== null;
    return existsSync(path.join(REPO_ROOT, key));
  }

  isDirectory(file: string): boolean {
    const full = path.join(REPO_ROOT, path.posix.normalize(file));
    return existsSync(full) && statSync(full).isDirectory();
  }

  /** Every file under `dir`, recursively, as repository paths. */
  files(dir: string): string[] {
    const found: string[] = [];
    const walk = (rel: string) => {
      for (const entry of readdirSync(path.join(REPO_ROOT, rel), { withFileTypes: true })) {
        const child = path.posix.join(rel, entry.name);
        if (entry.isDirectory()) walk(child);
        else found.push(child);
      }
    };
    if (this.isDirectory(dir)) walk(dir);
    for (const [file, text] of this.overrides) if (file.startsWith(`${dir}/`) && text !== null && !found.includes(file)) found.push(file);
    return found.filter((file) => this.exists(file)).sort();
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asObject = (v: unknown): Json => (isObject(v) ? v : {});
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** Any YAML value as text, for messages and comparisons. */
const text = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

// ---------------------------------------------------------------------------------------------
// What the repository says the services are.

/** The subgraphs supergraph.yaml composes, in its order. */
function subgraphNames(tree: Tree): string[] {
  const config = asObject(parse(tree.read('supergraph.yaml') ?? ''));
  return Object.keys(asObject(config.subgraphs));
}

/** Every process the image can run: the gateway and each subgraph. */
function serviceNames(tree: Tree): string[] {
  return ['gateway', ...subgraphNames(tree)];
}

/** Whether the process `service` reads the variable `name`, by that process's config schema. */
function isKnownVariable(tree: Tree, service: string, name: string): boolean {
  if (service === 'gateway') {
    // isGatewayVariable accepts SUBGRAPH_<ANY>_URL: the name must also be one of ours.
    const named = /^SUBGRAPH_(.+?)(_TIMEOUT_MS|_URL)$/.exec(name);
    if (named && named[1] !== undefined && !subgraphNames(tree).includes(named[1].toLowerCase())) return false;
    return isGatewayVariable(name) || isOpenTelemetryVariable(name);
  }
  return isSubgraphVariable(service, name);
}

/**
 * `SERVICE` is the image's own variable: the entrypoint reads it to pick the process (checked
 * against the Dockerfile below); no config schema reads it.
 */
const IMAGE_VARIABLES = new Set(['SERVICE']);

function unknownVariables(tree: Tree, where: string, service: string, names: Iterable<string>): string[] {
  return [...names]
    .filter((name) => !IMAGE_VARIABLES.has(name) && !isKnownVariable(tree, service, name))
    .map((name) => `${where}: ${name} is not a variable ${service} reads (its config schema does not know it)`);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

interface ModelInstance {
  apiVersion?: string;
  validate(): void;
}
type ModelClass = new (data: Json) => ModelInstance;

/** The API versions a manifest may use: the served, stable ones. Anything else is an error. */
const API_VERSIONS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'policy/v1': policyV1,
  'autoscaling/v2': autoscalingV2,
  'batch/v1': batchV1,
  'networking.k8s.io/v1': networkingV1,
};

const KUSTOMIZATION_KEYS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'configMapGenerator',
  'secretGenerator',
  'generatorOptions',
  'images',
  'namespace',
  'namePrefix',
  'nameSuffix',
  'labels',
  'commonAnnotations',
  'patches',
  'replicas',
]);

interface K8sObject {
  file: string;
  doc: Json;
  kind: string;
  name: string;
}

/** Parses every YAML document of a file; a parse error is a problem. */
function yamlDocuments(tree: Tree, file: string, problems: string[]): Json[] {
  const text = tree.read(file);
  if (text === undefined) {
    problems.push(`${file}: missing`);
    return [];
  }
  const docs: Json[] = [];
  for (const doc of parseAllDocuments(text, { merge: true })) {
    if (doc.errors.length > 0) problems.push(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isObject(value)) problems.push(`${file}: a document that is not a mapping`);
    else docs.push(value);
  }
  return docs;
}

/** Validates one object against the Kubernetes API schema of its apiVersion and kind. */
function validateObject(file: string, doc: Json): string[] {
  const apiVersion = asString(doc.apiVersion) ?? '';
  const kind = asString(doc.kind) ?? '';
  const name = asString(asObject(doc.metadata).name) ?? '(no name)';
  const where = `${file}: ${kind || '(no kind)'} ${name}`;
  const group = API_VERSIONS[apiVersion];
  if (!group) return [`${where}: apiVersion ${JSON.stringify(apiVersion)} is not one of ${Object.keys(API_VERSIONS).join(', ')}`];
  const Model = group[kind] as ModelClass | undefined;
  if (typeof Model !== 'function' || !/^[A-Z]/.test(kind) || kind.endsWith('List'))
    return [`${where}: ${apiVersion} has no kind ${JSON.stringify(kind)}`];
  const model = new Model(doc);
  if (model.apiVersion !== apiVersion) return [`${where}: ${kind} is ${String(model.apiVersion)}, not ${apiVersion}`];
  if (name === '(no name)') return [`${where}: metadata.name is missing`];
  try {
    model.validate();
    return [];
  } catch (err) {
    return [`${where}: ${(err as Error).message}`];
  }
}

interface Rendered {
  objects: K8sObject[];
  /** ConfigMaps made by configMapGenerator: name, data keys. */
  generated: { name: string; keys: string[] }[];
  images: string[];
}

/** Resolves a kustomization directory the way kustomize would (resources, generators), minus the transformations. */
function renderKustomization(tree: Tree, dir: string, problems: string[], seen: Set<string> = new Set()): Rendered {
  const file = path.posix.join(dir, 'kustomization.yaml');
  const rendered: Rendered = { objects: [], generated: [], images: [] };
  if (seen.has(dir)) {
    problems.push(`${file}: includes itself`);
    return rendered;
  }
  seen.add(dir);
  const [k] = yamlDocuments(tree, file, problems);
  if (!k) return rendered;
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization')
    problems.push(`${file}: must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization`);
  for (const key of Object.keys(k)) if (!KUSTOMIZATION_KEYS.has(key)) problems.push(`${file}: unknown or unsupported field ${key}`);
  // kustomize's load restrictor: files (not kustomization directories) must be inside `dir`.
  const inside = (p: string) => !path.posix.relative(dir, path.posix.join(dir, p)).startsWith('..');
  for (const entry of asArray(k.resources)) {
    const rel = asString(entry);
    if (rel === undefined) {
      problems.push(`${file}: a resource that is not a path`);
      continue;
    }
    const target = path.posix.join(dir, rel);
    if (tree.exists(path.posix.join(target, 'kustomization.yaml'))) {
      const sub = renderKustomization(tree, target, problems, seen);
      rendered.objects.push(...sub.objects);
      rendered.generated.push(...sub.generated);
      rendered.images.push(...sub.images);
    } else if (!tree.exists(target) || tree.isDirectory(target)) {
      problems.push(`${file}: resource ${rel} does not exist`);
    } else if (!inside(rel)) {
      problems.push(`${file}: resource file ${rel} is outside the kustomization's folder (kustomize refuses it)`);
    } else {
      for (const doc of yamlDocuments(tree, target, problems)) {
        problems.push(...validateObject(target, doc));
        rendered.objects.push({
          file: target,
          doc,
          kind: asString(doc.kind) ?? '',
          name: asString(asObject(doc.metadata).name) ?? '',
        });
      }
    }
  }
  for (const generator of asArray(k.configMapGenerator)) {
    const g = asObject(generator);
    const name = asString(g.name);
    if (!name) problems.push(`${file}: a configMapGenerator without a name`);
    const keys: string[] = [];
    for (const entry of asArray(g.files)) {
      const spec = asString(entry) ?? '';
      const [key, source] = spec.includes('=') ? (spec.split('=', 2) as [string, string]) : [path.posix.basename(spec), spec];
      if (!inside(source))
        problems.push(`${file}: configMapGenerator file ${source} is outside the kustomization's folder (kustomize refuses it)`);
      else if (!tree.exists(path.posix.join(dir, source))) problems.push(`${file}: configMapGenerator file ${source} does not exist`);
      keys.push(key);
    }
    for (const entry of asArray(g.literals)) keys.push((asString(entry) ?? '').split('=', 1)[0] ?? '');
    if (name) rendered.generated.push({ name, keys });
  }
  for (const image of asArray(k.images)) {
    const name = asString(asObject(image).name);
    if (name) rendered.images.push(name);
  }
  // A manifest beside the kustomization that it does not list would silently not be applied.
  const listed = new Set(asArray(k.resources).map((r) => path.posix.join(dir, asString(r) ?? '')));
  for (const f of tree.files(dir))
    if (/\.ya?ml$/.test(f) && path.posix.dirname(f) === dir && !f.endsWith('/kustomization.yaml') && !listed.has(f))
      problems.push(`${file}: ${path.posix.basename(f)} is not listed in resources`);
  return rendered;
}

const matches = (selector: Json, labels: Json) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);

interface Container {
  name: string;
  doc: Json;
}

function podSpec(o: K8sObject): Json {
  return asObject(asObject(asObject(o.doc.spec).template).spec);
}

function containersOf(o: K8sObject): Container[] {
  return asArray(podSpec(o).containers).map((c) => ({ name: asString(asObject(c).name) ?? '', doc: asObject(c) }));
}

/** The names and keys every ConfigMap and Secret of the rendered set provides. */
function dataKeys(rendered: Rendered): { configMaps: Map<string, string[]>; secrets: Map<string, string[]> } {
  const configMaps = new Map<string, string[]>();
  const secrets = new Map<string, string[]>();
  for (const o of rendered.objects) {
    const keys = [
      ...Object.keys(asObject(o.doc.data)),
      ...Object.keys(asObject(o.doc.stringData)),
      ...Object.keys(asObject(o.doc.binaryData)),
    ];
    if (o.kind === 'ConfigMap') configMaps.set(o.name, keys);
    if (o.kind === 'Secret') secrets.set(o.name, keys);
  }
  for (const g of rendered.generated) configMaps.set(g.name, g.keys);
  return { configMaps, secrets };
}

/** Deployments that run a fixed number of replicas, with why; every other Deployment needs an HPA. */
const WITHOUT_AUTOSCALER: Readonly<Record<string, string>> = {
  orders: 'appends to its event store take one advisory lock per store: replicas add no write throughput (scale by shards)',
};

/** Checks one rendered kustomization: references, probes, resources, security, environment. */
function checkRendered(tree: Tree, root: string, rendered: Rendered): string[] {
  const problems: string[] = [];
  const { configMaps, secrets } = dataKeys(rendered);
  const deployments = rendered.objects.filter((o) => o.kind === 'Deployment');
  const byKind = (kind: string) => rendered.objects.filter((o) => o.kind === kind);
  const services = serviceNames(tree);
  const seenServices = new Set<string>();

  for (const o of rendered.objects) {
    if (!o.name) continue;
    const twin = rendered.objects.filter((p) => p.kind === o.kind && p.name === o.name);
    if (twin.length > 1 && twin[0] === o) problems.push(`${root}: ${o.kind} ${o.name} is defined ${twin.length} times`);
  }

  for (const d of deployments) {
    const where = `${d.file}: Deployment ${d.name}`;
    const spec = asObject(d.doc.spec);
    const podLabels = asObject(asObject(asObject(spec.template).metadata).labels);
    if (!matches(asObject(asObject(spec.selector).matchLabels), podLabels))
      problems.push(`${where}: its selector does not match its pod labels`);
    const pod = podSpec(d);
    const podSecurity = asObject(pod.securityContext);
    const volumes = asArray(pod.volumes).map(asObject);
    for (const volume of volumes) {
      const cm = asString(asObject(volume.configMap).name);
      if (cm !== undefined && !configMaps.has(cm))
        problems.push(`${where}: volume ${String(volume.name)} mounts ConfigMap ${cm}, which does not exist`);
      const secret = asString(asObject(volume.secret).secretName);
      if (secret !== undefined && !secrets.has(secret))
        problems.push(`${where}: volume ${String(volume.name)} mounts Secret ${secret}, which does not exist`);
    }
    const containers = containersOf(d);
    if (containers.length === 0) problems.push(`${where}: no containers`);
    for (const c of containers) {
      const at = `${where}, container ${c.name}`;
      const probePath = (probe: string) => asString(asObject(asObject(c.doc[probe]).httpGet).path);
      if (probePath('livenessProbe') !== '/health') problems.push(`${at}: livenessProbe must be an HTTP GET of /health`);
      if (probePath('readinessProbe') !== '/ready') problems.push(`${at}: readinessProbe must be an HTTP GET of /ready`);
      const resources = asObject(c.doc.resources);
      for (const part of ['requests', 'limits'])
        for (const resource of ['cpu', 'memory'])
          if (asObject(resources[part])[resource] === undefined) problems.push(`${at}: resources.${part}.${resource} is missing`);
      const security = asObject(c.doc.securityContext);
      const runAsNonRoot = security.runAsNonRoot ?? podSecurity.runAsNonRoot;
      const runAsUser = security.runAsUser ?? podSecurity.runAsUser;
      if (runAsNonRoot !== true) problems.push(`${at}: securityContext.runAsNonRoot must be true`);
      if (runAsUser === 0) problems.push(`${at}: runs as uid 0`);
      if (security.allowPrivilegeEscalation !== false) problems.push(`${at}: securityContext.allowPrivilegeEscalation must be false`);
      const image = asString(c.doc.image) ?? '';
      if (image.split(':')[0] !== 'shop-platform')
        problems.push(`${at}: image ${image} is not the platform's image (shop-platform, from the Dockerfile)`);

      // The environment: literal values, and every key of each ConfigMap or Secret it loads.
      const names = new Map<string, string>();
      let service: string | undefined;
      for (const entry of asArray(c.doc.env).map(asObject)) {
        const name = asString(entry.name) ?? '';
        names.set(name, 'env');
        if (name === 'SERVICE') service = asString(entry.value);
        const from = asObject(entry.valueFrom);
        const cmRef = asObject(from.configMapKeyRef);
        const secretRef = asObject(from.secretKeyRef);
        if (cmRef.name !== undefined && !(configMaps.get(text(cmRef.name)) ?? []).includes(text(cmRef.key)))
          problems.push(`${at}: ${name} refers to ConfigMap ${text(cmRef.name)} key ${text(cmRef.key)}, which does not exist`);
        if (secretRef.name !== undefined && !(secrets.get(text(secretRef.name)) ?? []).includes(text(secretRef.key)))
          problems.push(`${at}: ${name} refers to Secret ${text(secretRef.name)} key ${text(secretRef.key)}, which does not exist`);
      }
      const envFrom = asArray(c.doc.envFrom).map(asObject);
      if (envFrom.length === 0) problems.push(`${at}: takes no environment from a ConfigMap or Secret (envFrom)`);
      for (const entry of envFrom) {
        const cm = asString(asObject(entry.configMapRef).name);
        const secret = asString(asObject(entry.secretRef).name);
        if (cm !== undefined) {
          const keys = configMaps.get(cm);
          if (!keys) problems.push(`${at}: envFrom ConfigMap ${cm} does not exist`);
          for (const key of keys ?? []) names.set(key, `ConfigMap ${cm}`);
        }
        if (secret !== undefined) {
          const keys = secrets.get(secret);
          if (!keys) problems.push(`${at}: envFrom Secret ${secret} does not exist`);
          for (const key of keys ?? []) names.set(key, `Secret ${secret}`);
        }
      }
      if (service === undefined || !services.includes(service)) {
        problems.push(`${at}: SERVICE must be one of ${services.join(', ')} (got ${String(service)})`);
        continue;
      }
      seenServices.add(service);
      for (const [name, source] of names) problems.push(...unknownVariables(tree, `${at} (${source})`, service, [name]));

      // The gateway reads the supergraph from SUPERGRAPH_PATH: a file of a mounted ConfigMap that has it.
      if (service === 'gateway') {
        const supergraphPath = asString(
          asArray(c.doc.env)
            .map(asObject)
            .find((e) => e.name === 'SUPERGRAPH_PATH')?.value,
        );
        const mount = asArray(c.doc.volumeMounts)
          .map(asObject)
          .find((m) => supergraphPath?.startsWith(`${String(m.mountPath)}/`));
        const volume = volumes.find((v) => v.name === mount?.name);
        const cm = asString(asObject(volume?.configMap).name);
        const key = supergraphPath && mount ? path.posix.relative(String(mount.mountPath), supergraphPath) : undefined;
        if (!supergraphPath || !cm || !key || !(configMaps.get(cm) ?? []).includes(key))
          problems.push(`${at}: SUPERGRAPH_PATH must name a file of a mounted ConfigMap holding the supergraph`);
      }
    }

    const services_ = byKind('Service').filter((s) => matches(asObject(asObject(s.doc.spec).selector), podLabels));
    if (services_.length === 0) problems.push(`${where}: no Service selects its pods`);
    if (!byKind('PodDisruptionBudget').some((p) => matches(asObject(asObject(asObject(p.doc.spec).selector).matchLabels), podLabels)))
      problems.push(`${where}: no PodDisruptionBudget covers its pods`);
    const hpa = byKind('HorizontalPodAutoscaler').find((h) => asObject(asObject(h.doc.spec).scaleTargetRef).name === d.name);
    if (!hpa && !(d.name in WITHOUT_AUTOSCALER)) problems.push(`${where}: no HorizontalPodAutoscaler (or a reason in WITHOUT_AUTOSCALER)`);
  }

  for (const s of byKind('Service')) {
    const spec = asObject(s.doc.spec);
    const selected = deployments.filter((d) =>
      matches(asObject(spec.selector), asObject(asObject(asObject(asObject(d.doc.spec).template).metadata).labels)),
    );
    if (selected.length === 0) {
      problems.push(`${s.file}: Service ${s.name} selects no Deployment's pods`);
      continue;
    }
    for (const port of asArray(spec.ports).map(asObject)) {
      const target = port.targetPort ?? port.port;
      const served = selected.every((d) =>
        containersOf(d).some((c) =>
          asArray(c.doc.ports)
            .map(asObject)
            .some((p) => p.name === target || p.containerPort === target),
        ),
      );
      if (!served) problems.push(`${s.file}: Service ${s.name} targets port ${String(target)}, which its pods do not have`);
    }
  }
  for (const p of byKind('PodDisruptionBudget')) {
    const selector = asObject(asObject(asObject(p.doc.spec).selector).matchLabels);
    if (!deployments.some((d) => matches(selector, asObject(asObject(asObject(asObject(d.doc.spec).template).metadata).labels))))
      problems.push(`${p.file}: PodDisruptionBudget ${p.name} selects no Deployment's pods`);
  }
  for (const h of byKind('HorizontalPodAutoscaler')) {
    const ref = asObject(asObject(h.doc.spec).scaleTargetRef);
    const target = deployments.find((d) => d.name === ref.name);
    if (ref.kind !== 'Deployment' || ref.apiVersion !== 'apps/v1' || !target)
      problems.push(
        `${h.file}: HorizontalPodAutoscaler ${h.name} targets ${String(ref.apiVersion)} ${String(ref.kind)} ${String(ref.name)}, which does not exist`,
      );
  }
  for (const image of rendered.images)
    if (!deployments.some((d) => containersOf(d).some((c) => (asString(c.doc.image) ?? '').split(':')[0] === image)))
      problems.push(`${root}: images names ${image}, which no container uses`);
  for (const service of services) if (!seenServices.has(service)) problems.push(`${root}: no Deployment runs ${service}`);
  return problems;
}

/** Every check of deploy/k8s: each YAML file parses and validates, each kustomization resolves and holds together. */
function checkKubernetes(tree: Tree): string[] {
  const problems: string[] = [];
  const files = tree.files('deploy/k8s').filter((f) => /\.ya?ml$/.test(f));
  if (files.length === 0) problems.push('deploy/k8s: no manifests');
  for (const file of files) {
    if (path.posix.basename(file) === 'kustomization.yaml') continue;
    for (const doc of yamlDocuments(tree, file, problems)) problems.push(...validateObject(file, doc));
  }
  const kustomizations = files.filter((f) => path.posix.basename(f) === 'kustomization.yaml').map((f) => path.posix.dirname(f));
  if (!kustomizations.includes('deploy/k8s/base')) problems.push('deploy/k8s/base/kustomization.yaml is missing');
  for (const dir of kustomizations) {
    const renderProblems: string[] = [];
    const rendered = renderKustomization(tree, dir, renderProblems);
    // A base's own problems are reported once, not again for each overlay that includes it.
    problems.push(...renderProblems.filter((p) => !problems.includes(p)));
    problems.push(...checkRendered(tree, dir, rendered).filter((p) => !problems.includes(p)));
  }
  // The ConfigMap's supergraph is the committed one (kustomize cannot read files outside base/).
  if (tree.read('deploy/k8s/base/supergraph.graphql') !== tree.read('supergraph.graphql'))
    problems.push('deploy/k8s/base/supergraph.graphql differs from supergraph.graphql: cp supergraph.graphql deploy/k8s/base/');
  return [...new Set(problems)];
}

// ---------------------------------------------------------------------------------------------
// compose.yaml and HAProxy

/** compose's `environment`, a map or a list of NAME=value. */
function composeEnvironment(env: unknown): Map<string, string> {
  if (Array.isArray(env)) return new Map(env.map((e) => text(e).split('=', 2) as [string, string]).map(([k, v]) => [k, v ?? '']));
  return new Map(Object.entries(asObject(env)).map(([k, v]) => [k, v === null ? '' : text(v)]));
}

interface HaproxyBackend {
  name: string;
  lines: string[];
}

function haproxySections(text: string): { frontends: HaproxyBackend[]; backends: HaproxyBackend[] } {
  const frontends: HaproxyBackend[] = [];
  const backends: HaproxyBackend[] = [];
  let current: HaproxyBackend | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const section = /^(global|defaults|resolvers|frontend|backend|listen|userlist|peers)\b\s*(\S*)/.exec(line);
    if (section && !/^\s/.test(raw)) {
      current = { name: section[2] ?? '', lines: [] };
      if (section[1] === 'frontend') frontends.push(current);
      else if (section[1] === 'backend') backends.push(current);
      continue;
    }
    current?.lines.push(line);
  }
  return { frontends, backends };
}

function checkCompose(tree: Tree): string[] {
  const problems: string[] = [];
  const [compose] = yamlDocuments(tree, 'compose.yaml', problems);
  if (!compose) return problems;
  const services = asObject(compose.services);
  const names = serviceNames(tree);
  const platform = new Map<string, { name: string; env: Map<string, string>; replicas: number }>();
  for (const [name, value] of Object.entries(services)) {
    const s = asObject(value);
    for (const dep of Object.keys(
      Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [String(d), 1])) : asObject(s.depends_on),
    ))
      if (!(dep in services)) problems.push(`compose.yaml: ${name} depends on ${dep}, which is not a service`);
    const build = asObject(s.build);
    if (!s.build && !(asString(s.image) ?? '').startsWith('shop-platform')) continue;
    if ((asString(build.dockerfile) ?? 'Dockerfile') !== 'Dockerfile' || (asString(build.context) ?? '.') !== '.')
      problems.push(`compose.yaml: ${name} is not built from the repository's Dockerfile`);
    const env = composeEnvironment(s.environment);
    const service = env.get('SERVICE');
    if (service === undefined || !names.includes(service)) {
      problems.push(`compose.yaml: ${name} sets SERVICE to ${String(service)}, not one of ${names.join(', ')}`);
      continue;
    }
    const replicas = Number(asObject(s.deploy).replicas ?? 1);
    platform.set(name, { name: service, env, replicas });
    problems.push(...unknownVariables(tree, `compose.yaml: ${name}`, service, env.keys()));
  }
  const running = [...platform.values()];
  for (const service of names) if (!running.some((p) => p.name === service)) problems.push(`compose.yaml: nothing runs ${service}`);
  for (const backing of ['postgres', 'redis', 'rabbitmq']) if (!(backing in services)) problems.push(`compose.yaml: no ${backing} service`);
  if (!running.some((p) => p.name === 'gateway' && p.replicas >= 2)) problems.push('compose.yaml: the gateway needs two replicas or more');
  if (!running.some((p) => p.name !== 'gateway' && p.replicas >= 2)) problems.push('compose.yaml: one subgraph needs two replicas or more');

  // HAProxy: the 2.6 image, with the config file of this repository, in front of every replicated service.
  const haproxy = Object.entries(services).find(([, v]) => (asString(asObject(v).image) ?? '').startsWith('haproxy:'));
  if (!haproxy) return [...problems, 'compose.yaml: no HAProxy service'];
  const [haproxyName, haproxyService] = haproxy;
  if (asString(asObject(haproxyService).image) !== 'haproxy:2.6') problems.push('compose.yaml: HAProxy must be the haproxy:2.6 image');
  const mounted = asArray(asObject(haproxyService).volumes)
    .map((v) => String(v).split(':'))
    .find(([, target]) => target === '/usr/local/etc/haproxy/haproxy.cfg');
  const cfgFile = mounted?.[0]?.replace(/^\.\//, '');
  const cfg = cfgFile ? tree.read(cfgFile) : undefined;
  if (!cfgFile || cfgFile !== 'deploy/compose/haproxy.cfg' || cfg === undefined)
    return [...problems, 'compose.yaml: HAProxy must mount deploy/compose/haproxy.cfg at /usr/local/etc/haproxy/haproxy.cfg'];
  const { frontends, backends } = haproxySections(cfg);
  const defaultsCheck = /^\s*default-server\b.*\bcheck\b/m.test(cfg);
  const cfgLines = cfg.split('\n').map((l) => l.trim());
  for (const line of RETRY_POLICY.defaults)
    if (!cfgLines.includes(line))
      problems.push(`deploy/compose/haproxy.cfg: defaults lack "${line}" (stack/src/haproxy.ts's retry policy)`);
  const gatewayEnv = [...platform.values()].find((p) => p.name === 'gateway')?.env ?? new Map<string, string>();
  for (const [composeName, p] of platform) {
    if (p.replicas < 2) continue;
    const port = p.env.get(p.name === 'gateway' ? 'GATEWAY_PORT' : `${p.name.toUpperCase()}_PORT`);
    const backend = backends.find((b) =>
      b.lines.some((l) => {
        const m = /^server-template\s+\S+\s+(\d+)\s+([\w.-]+):(\d+)/.exec(l);
        return m !== null && m[2] === composeName && m[3] === port && Number(m[1]) >= p.replicas;
      }),
    );
    if (!backend) {
      problems.push(
        `deploy/compose/haproxy.cfg: no backend with a server-template for the ${p.replicas} replicas of ${composeName}:${String(port)}`,
      );
      continue;
    }
    if (
      !backend.lines.includes('option httpchk') ||
      !backend.lines.some((l) => /^http-check send .*\buri \/ready\b/.test(l)) ||
      !defaultsCheck
    )
      problems.push(`deploy/compose/haproxy.cfg: backend ${backend.name} must health-check GET /ready`);
    // The retry policy of stack/src/haproxy.ts, which the multi-host rig proves: a mutation is never sent twice.
    const missing = RETRY_POLICY.backend.filter((line) => !backend.lines.includes(line));
    if (missing.length > 0) problems.push(`deploy/compose/haproxy.cfg: backend ${backend.name} lacks ${missing.join('; ')}`);
    const frontend = frontends.find((f) => f.lines.includes(`default_backend ${backend.name}`));
    const bind = frontend?.lines.map((l) => /^bind\s+\S*:(\d+)/.exec(l)?.[1]).find((x) => x !== undefined);
    if (!bind) {
      problems.push(`deploy/compose/haproxy.cfg: no frontend sends to backend ${backend.name}`);
      continue;
    }
    // The gateway reaches a replicated subgraph through HAProxy, not one replica.
    if (p.name !== 'gateway' && gatewayEnv.get(`SUBGRAPH_${p.name.toUpperCase()}_URL`) !== `http://${haproxyName}:${bind}/graphql`)
      problems.push(
        `compose.yaml: the gateway's SUBGRAPH_${p.name.toUpperCase()}_URL must be http://${haproxyName}:${bind}/graphql (HAProxy)`,
      );
  }
  // Every other subgraph the gateway calls by its compose name.
  for (const sub of subgraphNames(tree)) {
    const url = gatewayEnv.get(`SUBGRAPH_${sub.toUpperCase()}_URL`);
    const host = url ? new URL(url).hostname : undefined;
    if (!host || !(host in services))
      problems.push(`compose.yaml: the gateway's SUBGRAPH_${sub.toUpperCase()}_URL must name a compose service`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
  stage: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped, each with its stage. */
function dockerInstructions(text: string): {
  instructions: Instruction[];
  stages: { name: string; image: string }[];
} {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    // Comments, also between continuation lines (Docker drops those too).
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    pending += line;
    if (pending.trim()) logical.push(pending.trim());
    pending = '';
  }
  const instructions: Instruction[] = [];
  const stages: { name: string; image: string }[] = [];
  const globalArgs = new Map<string, string>();
  let stage = '';
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      const image = (m?.[1] ?? '').replace(/^\$\{?(\w+)\}?$/, (_, name: string) => globalArgs.get(name) ?? `$${name}`);
      stage = m?.[2] ?? `stage-${stages.length}`;
      stages.push({ name: stage, image });
    } else if (upper === 'ARG' && stage === '') {
      const [name = '', value = ''] = args.split('=', 2);
      globalArgs.set(name, value);
    }
    instructions.push({ keyword: upper, args, stage });
  }
  return { instructions, stages };
}

/** The parts of `ENV A=1 B=2` or `ENV A 1`. */
function envPairs(args: string): Map<string, string> {
  if (!args.includes('=')) {
    const [name = '', ...value] = args.split(/\s+/);
    return new Map([[name, value.join(' ')]]);
  }
  return new Map([...args.matchAll(/(\w+)=("[^"]*"|\S*)/g)].map((m) => [m[1] ?? '', (m[2] ?? '').replace(/^"|"$/g, '')]));
}

/** .dockerignore patterns as matchers (Go's filepath.Match plus `**`, as Docker reads them). */
function dockerignore(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\//, ''));
      const source = pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) => {
          if (part === '**/' || part === '**') return '(?:.*/)?';
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      // A pattern that matches a directory excludes everything under it.
      return { negate, re: new RegExp(`^${source}(?:/.*)?$`) };
    });
  return (file) => rules.reduce((excluded, rule) => (rule.re.test(file) ? !rule.negate : excluded), false);
}

function checkDockerfile(tree: Tree): string[] {
  const problems: string[] = [];
  const text = tree.read('Dockerfile');
  if (text === undefined) return ['Dockerfile is missing'];
  const pkg = asObject(JSON.parse(tree.read('package.json') ?? '{}'));
  const scripts = asObject(pkg.scripts);
  const { instructions, stages } = dockerInstructions(text);
  const ignored = dockerignore(tree.read('.dockerignore') ?? '');
  if (tree.read('.dockerignore') === undefined) problems.push('.dockerignore is missing');
  else if (!ignored('node_modules') || !ignored('gateway/node_modules')) problems.push('.dockerignore must leave out every node_modules');

  if (stages.length < 2) problems.push('Dockerfile: needs a deps stage and a runtime stage');
  for (const s of stages)
    if (s.image !== 'node:20-bookworm-slim' && !stages.some((t) => t.name === s.image))
      problems.push(`Dockerfile: stage ${s.name} is FROM ${s.image}, not node:20-bookworm-slim`);
  const runtime = stages.at(-1)?.name ?? '';
  const inStage = (name: string) => instructions.filter((i) => i.stage === name);

  // npm: `npm ci` from the lockfile, `npm run` only of scripts that exist, npm of packageManager's version.
  const runs = instructions.filter((i) => i.keyword === 'RUN');
  const ciStage = runs.find((i) => /\bnpm ci\b/.test(i.args))?.stage;
  if (!ciStage) problems.push('Dockerfile: no stage runs npm ci');
  else if (ciStage === runtime) problems.push('Dockerfile: npm ci must run in a deps stage, not the runtime stage');
  for (const run of runs) {
    for (const m of run.args.matchAll(/\bnpm run(?:-script)? ([\w:.-]+)/g))
      if (!(m[1]! in scripts)) problems.push(`Dockerfile: npm run ${m[1]!}: package.json has no such script`);
    if (/\bnpm ci\b.*--(omit=dev|production)/.test(run.args))
      problems.push('Dockerfile: npm ci without devDependencies leaves out tsx, which runs the services');
    const npmVersion = /\bnpm install -g npm@(\S+)/.exec(run.args)?.[1];
    if (npmVersion && `npm@${npmVersion}` !== pkg.packageManager)
      problems.push(`Dockerfile: installs npm@${npmVersion}, package.json's packageManager is ${String(pkg.packageManager)}`);
  }

  // COPY sources exist and reach the build context; the deps stage has every workspace's manifest.
  const copied = new Set<string>();
  for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))) {
    const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const source of parts.slice(0, -1)) {
      const rel = path.posix.normalize(source);
      if (rel !== '.' && !tree.exists(rel)) problems.push(`Dockerfile: COPY ${source}: no such file`);
      else if (rel !== '.' && ignored(rel)) problems.push(`Dockerfile: COPY ${source}: .dockerignore leaves it out of the build context`);
      if (copy.stage === ciStage) copied.add(rel);
    }
  }
  if (ciStage) {
    const workspaces = asArray(pkg.workspaces).flatMap((w) => {
      const pattern = String(w);
      if (!pattern.endsWith('/*')) return [pattern];
      const dir = pattern.slice(0, -2);
      return readdirSync(path.join(REPO_ROOT, dir)).map((name) => `${dir}/${name}`);
    });
    for (const file of ['package.json', 'package-lock.json', ...workspaces.map((w) => `${w}/package.json`)])
      if (tree.exists(file) && !copied.has(file)) problems.push(`Dockerfile: the ${ciStage} stage does not copy ${file} before npm ci`);
  }

  // The runtime stage: a non-root USER, SERVICE as an ARG and ENV, the entries the services mode runs.
  const user = inStage(runtime)
    .filter((i) => i.keyword === 'USER')
    .at(-1)
    ?.args.split(':')[0];
  if (!user) problems.push('Dockerfile: the runtime stage has no USER (it would run as root)');
  else if (user === 'root' || user === '0') problems.push(`Dockerfile: the runtime stage runs as ${user}`);
  else if (!/^\d+$/.test(user)) problems.push(`Dockerfile: USER ${user} is not numeric (Kubernetes' runAsNonRoot cannot verify a name)`);

  const services = serviceNames(tree);
  const arg = inStage(runtime).find((i) => i.keyword === 'ARG' && /^SERVICE\b/.test(i.args));
  const argDefault = arg?.args.split('=', 2)[1];
  if (!arg || !argDefault || !services.includes(argDefault)) problems.push('Dockerfile: the runtime stage needs ARG SERVICE=<a service>');
  const env = new Map<string, string>();
  for (const i of inStage(runtime).filter((i) => i.keyword === 'ENV')) for (const [k, v] of envPairs(i.args)) env.set(k, v);
  if (!/^\$\{?SERVICE\}?$/.test(env.get('SERVICE') ?? ''))
    problems.push('Dockerfile: ENV SERVICE=${SERVICE} is missing: a container could not choose its service');
  for (const service of services) problems.push(...unknownVariables(tree, 'Dockerfile ENV', service, env.keys()));

  const entrypoint = [...inStage(runtime)].reverse().find((i) => i.keyword === 'ENTRYPOINT' || i.keyword === 'CMD');
  let command = entrypoint?.args ?? '';
  try {
    const exec: unknown = JSON.parse(command);
    if (Array.isArray(exec)) command = exec.map(String).join(' ');
  } catch {
    // The shell form: the text itself.
  }
  const choices = [...command.matchAll(/(?:^|[;\s])([a-z|]+)\)/g)].flatMap((m) => (m[1] ?? '').split('|'));
  if ([...choices].sort().join(',') !== [...services].sort().join(','))
    problems.push(
      `Dockerfile: the entrypoint's SERVICE choices (${choices.join(', ')}) are not the project's services (${services.join(', ')})`,
    );
  if (!/\bexec node --import tsx\b/.test(command))
    problems.push('Dockerfile: the entrypoint must exec node --import tsx <entry> (as stack/src/services.ts starts each service)');
  const entries = [...command.matchAll(/entry=(\S+?)\s*;/g)].map((m) => m[1] ?? '');
  const resolved = entries.flatMap((e) => (e.includes('$SERVICE') ? subgraphNames(tree).map((s) => e.replace('$SERVICE', s)) : [e]));
  for (const service of services) {
    const expected = service === 'gateway' ? 'gateway/src/index.ts' : `subgraphs/${service}/src/index.ts`;
    if (!resolved.includes(expected)) problems.push(`Dockerfile: the entrypoint does not run ${expected} for ${service}`);
  }
  for (const entry of resolved) {
    if (!tree.exists(entry)) problems.push(`Dockerfile: entry ${entry} does not exist`);
    else if (ignored(entry)) problems.push(`Dockerfile: entry ${entry} is left out by .dockerignore`);
  }
  for (const needed of ['supergraph.graphql', 'package.json', 'package-lock.json', 'operations/trusted-documents.json'])
    if (ignored(needed)) problems.push(`Dockerfile: .dockerignore leaves out ${needed}, which the services read`);
  const tsx = asObject(pkg.devDependencies).tsx ?? asObject(pkg.dependencies).tsx;
  if (!tsx) problems.push('Dockerfile: the entrypoint needs tsx, which package.json does not depend on');

  const healthcheck = inStage(runtime).find((i) => i.keyword === 'HEALTHCHECK');
  if (!healthcheck || !healthcheck.args.includes('/health')) problems.push('Dockerfile: the runtime stage needs a HEALTHCHECK of /health');
  return problems;
}

// ---------------------------------------------------------------------------------------------

const real = new Tree();

describe('the deployment files', () => {
  it('every Kubernetes manifest is valid, and the kustomization resolves and holds together', () => {
    expect(checkKubernetes(real)).toEqual([]);
  });

  it('compose.yaml mirrors the services mode: every service, replicas behind HAProxy, known variables only', () => {
    expect(checkCompose(real)).toEqual([]);
  });

  it('the Dockerfile builds from the lockfile, runs each service as the services mode does, as a non-root user', () => {
    expect(checkDockerfile(real)).toEqual([]);
  });

  it('isSubgraphVariable knows each subgraph its own variables and no other', () => {
    expect(isSubgraphVariable('accounts', 'ACCOUNTS_DATABASE_URL')).toBe(true);
    expect(isSubgraphVariable('products', 'ACCOUNTS_DATABASE_URL')).toBe(false);
    expect(isSubgraphVariable('accounts', 'SIGNING_KEY_MAX_AGE_S')).toBe(true);
    expect(isSubgraphVariable('reviews', 'SIGNING_KEY_MAX_AGE_S')).toBe(false);
    expect(isSubgraphVariable('orders', 'CHECKOUT_MAX_ATTEMPTS')).toBe(true);
    expect(isSubgraphVariable('orders', 'ORDERS_SHARDS')).toBe(true);
    expect(isSubgraphVariable('inventory', 'RESERVATION_SWEEP_INTERVAL_MS')).toBe(true);
    expect(isSubgraphVariable('payments', 'PSP_DECLINE_RATE')).toBe(true);
    expect(isSubgraphVariable('payments', 'GATEWAY_PORT')).toBe(false);
    expect(isSubgraphVariable('reviews', 'SUBGRAPH_SECRET')).toBe(true);
    expect(isSubgraphVariable('reviews', 'OTEL_EXPORTER_OTLP_ENDPOINT')).toBe(true);
    expect(isSubgraphVariable('reviews', 'OTEL_EXPORTER_OTLP_ENDPIONT')).toBe(false);
    expect(isSubgraphVariable('reviews', 'SUBGRAPH_SECRT')).toBe(false);
    expect(isSubgraphVariable('reviews', 'toString')).toBe(false);
  });
});

describe('the checks catch broken files', () => {
  /** `tree` with `file`'s text changed by `edit`; the edit must change something. */
  function mutate(file: string, edit: (text: string) => string, tree: Tree = real): Tree {
    const before = tree.read(file) ?? '';
    const after = edit(before);
    expect(after).not.toBe(before);
    return tree.with(file, after);
  }
  const problems = (tree: Tree) => [...checkKubernetes(tree), ...checkCompose(tree), ...checkDockerfile(tree)];

  it.each<[string, string, (text: string) => string, RegExp]>([
    [
      'a wrong apiVersion',
      'deploy/k8s/base/products.yaml',
      (t) => t.replace('apiVersion: apps/v1\nkind: Deployment', 'apiVersion: apps/v1beta1\nkind: Deployment'),
      /apiVersion "apps\/v1beta1"/,
    ],
    [
      'a PodDisruptionBudget of a removed API',
      'deploy/k8s/base/reviews.yaml',
      (t) => t.replace('policy/v1', 'policy/v1beta1'),
      /policy\/v1beta1/,
    ],
    ['an unknown kind', 'deploy/k8s/base/products.yaml', (t) => t.replace('kind: Deployment', 'kind: Deploymnet'), /no kind "Deploymnet"/],
    [
      'a field of the wrong type',
      'deploy/k8s/base/accounts.yaml',
      (t) => t.replace('replicas: 2', 'replicas: two'),
      /replicas must be integer/,
    ],
    [
      'a missing readiness probe',
      'deploy/k8s/base/products.yaml',
      (t) => t.replace('readinessProbe:', 'readinessProbeX:'),
      /readinessProbe must be/,
    ],
    [
      'a liveness probe on /ready',
      'deploy/k8s/base/gateway.yaml',
      (t) => t.replace(/(livenessProbe:\s+httpGet:\s+path:) \/health/, '$1 /ready'),
      /livenessProbe must be/,
    ],
    [
      'missing resource limits',
      'deploy/k8s/base/inventory.yaml',
      (t) => t.replace(/ {10}limits:\n( {12}.*\n)+/, ''),
      /resources\.limits\.cpu is missing/,
    ],
    [
      'runAsNonRoot off',
      'deploy/k8s/base/payments.yaml',
      (t) => t.replaceAll('runAsNonRoot: true', 'runAsNonRoot: false'),
      /runAsNonRoot must be true/,
    ],
    [
      'an unknown variable in a ConfigMap',
      'deploy/k8s/base/config.yaml',
      (t) => t.replace('SEED:', 'SEEED:'),
      /SEEED is not a variable accounts reads/,
    ],
    [
      'a misspelled secret variable',
      'deploy/k8s/base/secrets.yaml',
      (t) => t.replace('SUBGRAPH_SECRET:', 'SUBGRAPH_SECRT:'),
      /SUBGRAPH_SECRT is not a variable gateway reads/,
    ],
    [
      "another subgraph's database URL",
      'deploy/k8s/base/secrets.yaml',
      (t) => t.replace('PRODUCTS_DATABASE_URL:', 'REVIEWS_DATABASE_URL:'),
      /REVIEWS_DATABASE_URL is not a variable products reads/,
    ],
    [
      'a gateway override for a subgraph that does not exist',
      'deploy/k8s/base/config.yaml',
      (t) => t.replace('SUBGRAPH_REVIEWS_URL', 'SUBGRAPH_REVEIWS_URL'),
      /SUBGRAPH_REVEIWS_URL is not a variable gateway reads/,
    ],
    [
      'an envFrom of a missing ConfigMap',
      'deploy/k8s/base/orders.yaml',
      (t) => t.replace('name: shop-subgraphs', 'name: shop-subgraph'),
      /ConfigMap shop-subgraph does not exist/,
    ],
    [
      'a Service selecting nothing',
      'deploy/k8s/base/reviews.yaml',
      (t) => t.replace(/(kind: Service[\s\S]*?selector:\s+app\.kubernetes\.io\/name:) reviews/, '$1 review'),
      /Service reviews selects no Deployment/,
    ],
    [
      'an HPA of a missing Deployment',
      'deploy/k8s/base/products.yaml',
      (t) => t.replace(/(scaleTargetRef:[\s\S]*?name:) products/, '$1 product'),
      /targets apps\/v1 Deployment product/,
    ],
    [
      'a missing resource file',
      'deploy/k8s/base/kustomization.yaml',
      (t) => t.replace('- payments.yaml', '- payment.yaml'),
      /resource payment\.yaml does not exist/,
    ],
    [
      'a resource file left out',
      'deploy/k8s/base/kustomization.yaml',
      (t) => t.replace('  - payments.yaml\n', ''),
      /payments\.yaml is not listed/,
    ],
    ['a stale supergraph copy', 'deploy/k8s/base/supergraph.graphql', (t) => `${t}\n# stale\n`, /differs from supergraph\.graphql/],
    [
      'an unknown variable in compose.yaml',
      'compose.yaml',
      (t) => t.replace('PRODUCTS_PORT:', 'PRODUCT_PORT:'),
      /PRODUCT_PORT is not a variable products reads/,
    ],
    [
      'a gateway variable set on a subgraph',
      'compose.yaml',
      (t) => t.replace("SEED: 'true'", "JWKS_URL: 'http://x'"),
      /JWKS_URL is not a variable accounts reads/,
    ],
    [
      'a gateway with one replica',
      'compose.yaml',
      (t) => t.replace(/(gateway:\n(?:.*\n)*?\s+deploy:\n\s+replicas:) 2/, '$1 1'),
      /the gateway needs two replicas/,
    ],
    [
      'HAProxy checking /health',
      'deploy/compose/haproxy.cfg',
      (t) => t.replaceAll('uri /ready', 'uri /health'),
      /must health-check GET \/ready/,
    ],
    [
      'an npm script that does not exist',
      'Dockerfile',
      (t) => t.replace('RUN npm ci --no-audit --no-fund', 'RUN npm ci --no-audit --no-fund && npm run biuld'),
      /npm run biuld/,
    ],
    [
      'a base image that is not Node 20',
      'Dockerfile',
      (t) => t.replace('NODE_IMAGE=node:20-bookworm-slim', 'NODE_IMAGE=node:22-bookworm-slim'),
      /not node:20-bookworm-slim/,
    ],
    ['no USER in the runtime stage', 'Dockerfile', (t) => t.replace('USER 1000:1000\n', ''), /has no USER/],
    ['a service missing from the entrypoint', 'Dockerfile', (t) => t.replace('|payments)', ')'), /SERVICE choices/],
    [
      'an entry that does not exist',
      'Dockerfile',
      (t) => t.replace('entry=gateway/src/index.ts', 'entry=gateway/src/main.js'),
      /gateway\/src\/main\.js does not exist/,
    ],
    [
      'an unknown variable in the Dockerfile',
      'Dockerfile',
      (t) => t.replace('NODE_ENV=production', 'NODE_ENVIRONMENT=production'),
      /NODE_ENVIRONMENT is not a variable/,
    ],
    [
      'a workspace manifest not copied',
      'Dockerfile',
      (t) => t.replace('COPY stack/package.json stack/\n', ''),
      /does not copy stack\/package\.json/,
    ],
    ['the entry left out of the context', '.dockerignore', (t) => `${t}subgraphs/*/src/index.ts\n`, /left out by \.dockerignore/],
  ])('%s', (_name, file, edit, expected) => {
    const found = problems(mutate(file, edit));
    expect(found.some((p) => expected.test(p))).toBe(true);
  });
});
