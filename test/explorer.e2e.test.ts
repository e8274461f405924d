// The explorer in a real browser (Debian's chromium, driven by playwright-core) against the
// embedded stack: the page renders, runs an operation from its tabs, shows the result, opens the
// docs from introspection, follows an order over a WebSocket, and in all of that the browser asks
// nothing of any host but the gateway's. Every request leaving for elsewhere is aborted and
// recorded, and the test fails on it.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Browser, type BrowserContext, type Page, type Request, chromium } from 'playwright-core';
import { type Stack, startStack } from '@shop/stack';
import { bearer, eventually, graphqlClient } from '@shop/testing';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve(__dirname, '..', 'docs', 'explorer.png');
const PLAN_SCREENSHOT = path.resolve(__dirname, '..', 'docs', 'explorer-plan.png');
const SUBSCRIPTION_SCREENSHOT = path.resolve(__dirname, '..', 'docs', 'explorer-subscription.png');
/** The operation of the explorer's HomePage tab: products, inventory, reviews and accounts answer it. */
const HOME_PAGE = readFileSync(path.resolve(__dirname, '..', 'operations', 'HomePage.graphql'), 'utf8');
/** Generous: a cold chromium on a loaded CI machine takes seconds to parse 1 MB of GraphiQL. */
const UI_TIMEOUT = 30_000;

jest.setTimeout(120_000);

/** Requests that stay on this machine; `data:` and `blob:` URLs never reach the network. */
function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:') return true;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

let stack: Stack;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let base: string;
const requests: string[] = [];
/** WebSockets the page opened: playwright reports them apart from requests, and routes none of them. */
const sockets: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does`);
  }
  stack = await startStack({
    ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0 },
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    seed: { users: 100, products: 100, reviews: 500 },
  });
  base = stack.gatewayUrl.replace(/\/graphql$/, '');
  // launch() gives the browser a fresh temporary profile and removes it on close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route('**/*', (route) => (isLocal(route.request().url()) ? route.continue() : route.abort('blockedbyclient')));
  page = await context.newPage();
  page.on('request', (request) => requests.push(request.url()));
  page.on('websocket', (socket) => sockets.push(socket.url()));
  // A blocked request, a Content-Security-Policy violation or a script error shows up here.
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the explorer in a browser, offline', () => {
  it('runs an operation from its tabs and shows the result the API gives', async () => {
    // The value to look for, fetched independently of the browser.
    const api = graphqlClient(stack.gatewayUrl);
    const expected = (await api.query('{ topProducts(first: 5) { name } }')) as { data?: { topProducts: { name: string }[] } };
    const topName = expected.data?.topProducts[0]?.name;
    expect(topName).toEqual(expect.any(String));

    const response = await page.goto(`${base}/explorer`);
    expect(response?.status()).toBe(200);
    await page.locator('.graphiql-container').waitFor({ timeout: UI_TIMEOUT });

    // Every operation in operations/ is a tab; the first is selected.
    const tabs = page.locator('.graphiql-tab');
    await tabs.first().waitFor({ timeout: UI_TIMEOUT });
    const titles = (await tabs.locator('.graphiql-tab-button').allTextContents()).map((t) => t.trim());
    expect(titles).toEqual([
      'CategoryListing',
      'HomePage',
      'ProductPage',
      'UserPage',
      'CheckoutProgress',
      'CustomerOrders',
      'OrderHistory',
      'EditProfile',
      'SignIn',
      'WriteReview',
      'AddToOrder',
      'Checkout',
      'FollowOrder',
    ]);
    expect(await tabs.first().getAttribute('aria-selected')).toBe('true');
    // With its example variables, and a headers editor (for auth) beside them.
    await page.locator('.graphiql-editor-tool', { hasText: '"books"' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).waitFor({ timeout: UI_TIMEOUT });

    await page.locator('.graphiql-tab', { hasText: 'HomePage' }).click();
    await page.locator('.graphiql-tab[aria-selected="true"]', { hasText: 'HomePage' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-query-editor', { hasText: 'topProducts' }).waitFor({ timeout: UI_TIMEOUT });

    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response', { hasText: String(topName) }).waitFor({ timeout: UI_TIMEOUT });
    await page.screenshot({ path: await screenshotPath(SCREENSHOT) });
  });

  it('opens the docs explorer from introspection', async () => {
    await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs
      .locator('a', { hasText: /^Query$/ })
      .first()
      .click({ timeout: UI_TIMEOUT });
    // The root Query type's fields come from the gateway's schema.
    await docs.getByText('topProducts', { exact: true }).first().waitFor({ timeout: UI_TIMEOUT });
  });

  it('signs in from the SignIn tab and sends the token with the requests after it, until it is forgotten', async () => {
    const badge = page.locator('.explorer-session');
    expect(await badge.getAttribute('data-session')).toBe('anonymous');
    await page.locator('.graphiql-tab', { hasText: 'SignIn' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'signIn' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response', { hasText: 'accessToken' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('button.explorer-session', { hasText: /signed in as u\d+/ }).waitFor({ timeout: UI_TIMEOUT });

    const isGraphQL = (url: string) => new URL(url).pathname === '/graphql';
    await page.locator('.graphiql-tab', { hasText: 'HomePage' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'topProducts' }).waitFor({ timeout: UI_TIMEOUT });
    const [signedIn] = await Promise.all([
      page.waitForRequest((r) => isGraphQL(r.url()) && r.method() === 'POST' && (r.postData() ?? '').includes('topProducts')),
      page.locator('.graphiql-execute-button').click(),
    ]);
    expect(signedIn.headers().authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

    await page.locator('button.explorer-session').click();
    await page.locator('.explorer-session[data-session="anonymous"]').waitFor({ timeout: UI_TIMEOUT });
    const [anonymous] = await Promise.all([
      page.waitForRequest((r) => isGraphQL(r.url()) && r.method() === 'POST' && (r.postData() ?? '').includes('topProducts')),
      page.locator('.graphiql-execute-button').click(),
    ]);
    expect(anonymous.headers().authorization).toBeUndefined();
  });

  it('shows the query plan beside the result: the plan as a tree, its fetches as a waterfall, one bar per fetch', async () => {
    // The plan of the same operation, asked for independently of the browser: the subgraphs it
    // calls. Named as the page names it, so the browser's run finds the plan made (no planning in
    // its waterfall).
    const api = await fetch(stack.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'apollo-expose-query-plan': 'true' },
      body: JSON.stringify({ query: HOME_PAGE, operationName: 'HomePage' }),
    });
    const expected = (await api.json()) as { extensions?: { fetchTimings?: Array<{ subgraph: string }> } };
    const subgraphs = [...new Set((expected.extensions?.fetchTimings ?? []).map((t) => t.subgraph))].sort();
    expect(subgraphs).toEqual(['accounts', 'inventory', 'products', 'reviews']);

    await page.goto(`${base}/explorer`);
    await page.locator('.graphiql-tab', { hasText: 'HomePage' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'topProducts' }).waitFor({ timeout: UI_TIMEOUT });
    const panel = page.locator('aside.explorer-plan');
    const toggle = page.getByRole('button', { name: 'Query plan' });
    expect({ panels: await panel.count(), pressed: await toggle.getAttribute('aria-pressed') }).toEqual({ panels: 0, pressed: 'false' });
    await toggle.click();
    await panel.waitFor({ timeout: UI_TIMEOUT });
    expect(await toggle.getAttribute('aria-pressed')).toBe('true');

    const isHomePage = (r: Request) =>
      new URL(r.url()).pathname === '/graphql' && r.method() === 'POST' && (r.postData() ?? '').includes('topProducts');
    const [request] = await Promise.all([page.waitForRequest(isHomePage), page.locator('.graphiql-execute-button').click()]);
    expect(request.headers()['apollo-expose-query-plan']).toBe('true');
    const answer = (await (await request.response())?.json()) as { extensions?: { fetchTimings?: unknown[] } };
    const fetches = answer.extensions?.fetchTimings?.length ?? 0;
    expect(fetches).toBe(expected.extensions?.fetchTimings?.length);

    const bars = panel.locator('.explorer-waterfall-bar');
    await bars.first().waitFor({ timeout: UI_TIMEOUT });
    expect(await bars.count()).toBe(fetches);
    const tree = panel.locator('.explorer-plan-tree');
    expect(await tree.locator('li[data-kind="Fetch"]').count()).toBe(fetches);
    const named = await tree.locator('li[data-kind="Fetch"] strong').allTextContents();
    expect([...new Set(named)].sort()).toEqual(subgraphs);
    // Each bar is labelled with its subgraph, its time and the representations it sent.
    const labels = await panel.locator('.explorer-waterfall-label').allTextContents();
    expect(labels).toHaveLength(fetches);
    // An entity fetch answered from the caches (the operation ran earlier in this file) says how many.
    for (const label of labels)
      expect(label).toMatch(/^(accounts|inventory|products|reviews) [\d.]+ ms \u00b7 \d+ reps?( \(\d+ cached\))?$/);
    await page.screenshot({ path: await screenshotPath(PLAN_SCREENSHOT) });

    // Off again: no panel, and the header is no longer sent.
    await toggle.click();
    await panel.waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    const [plain] = await Promise.all([page.waitForRequest(isHomePage), page.locator('.graphiql-execute-button').click()]);
    expect(plain.headers()['apollo-expose-query-plan']).toBeUndefined();
  });

  it('follows an order from the FollowOrder tab over a WebSocket, as the signed-in user, and shows each change as it comes', async () => {
    await page.goto(`${base}/explorer`);
    await page.locator('.graphiql-tab', { hasText: 'SignIn' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'signIn' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-execute-button').click();
    const badge = page.locator('button.explorer-session', { hasText: /signed in as u\d+/ });
    await badge.waitFor({ timeout: UI_TIMEOUT });
    const user = String(await badge.getAttribute('data-session'));

    // That user's order, with a first line, made through the gateway as them.
    const api = graphqlClient(stack.gatewayUrl);
    const auth = bearer(await stack.token(user));
    const as = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
      const res = await api.query<T>(query, variables, auth);
      expect(res.errors).toBeUndefined();
      return res.data as T;
    };
    const { createOrder } = await as<{ createOrder: { id: string } }>('mutation ($k: ID) { createOrder(id: $k) { id } }', {
      k: randomUUID(),
    });
    const orderId = createOrder.id;
    const addLine = (productId: string, quantity: number) =>
      as<{ addOrderLine: Followed }>(
        `mutation ($id: ID!, $p: ID!, $q: Int!) { addOrderLine(orderId: $id, productId: $p, quantity: $q) ${FOLLOWED} }`,
        { id: orderId, p: productId, q: quantity },
      );
    await addLine('p00001', 1);

    // FollowOrder for that order, typed into the variables editor as a reader would.
    await page.locator('.graphiql-tab', { hasText: 'FollowOrder' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'orderUpdated' }).waitFor({ timeout: UI_TIMEOUT });
    const variables = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
    await variables.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.insertText(JSON.stringify({ id: orderId }));
    await page.locator('.graphiql-editor-tool', { hasText: orderId }).waitFor({ timeout: UI_TIMEOUT });

    // Running it opens one WebSocket to the endpoint (a subscription sent over HTTP is refused
    // with SUBSCRIPTION_TRANSPORT_REQUIRED), and the gateway then holds the subscription, checked:
    // the page's token reached it in connection_init.
    const before = stack.gateway.subscriptions();
    const socketsBefore = sockets.length;
    await page.locator('.graphiql-execute-button').click();
    await eventually(
      async () => ({ subscriptions: stack.gateway.subscriptions(), response: await responseText() }),
      (s) => s.subscriptions > before || s.response.includes('"errors"'),
      UI_TIMEOUT,
    );
    expect({ subscriptions: stack.gateway.subscriptions(), response: await responseText() }).toEqual({
      subscriptions: before + 1,
      response: '',
    });
    expect(sockets.slice(socketsBefore)).toEqual([`${base.replace(/^http/, 'ws')}/graphql`]);

    // The user changes the order elsewhere: the page shows the order as that change left it, with
    // what orders, products, inventory and accounts say of it, as the mutation answered it.
    const { addOrderLine: changed } = await addLine('p00002', 7);
    expect(changed.version).toBe(3);
    const shown = await eventually(
      async () => parsed(await responseText()),
      (r) => r?.data?.orderUpdated?.version === changed.version,
      UI_TIMEOUT,
    );
    expect(shown?.data).toEqual({ orderUpdated: changed });
    expect(changed.lines.map((l) => l.quantity)).toEqual([1, 7]);
    await page.screenshot({ path: await screenshotPath(SUBSCRIPTION_SCREENSHOT) });

    // Stopping it (the same button) ends the subscription on the gateway at once, not at the next event.
    await page.locator('.graphiql-execute-button').click();
    await eventually(
      async () => stack.gateway.subscriptions(),
      (n) => n === before,
      UI_TIMEOUT,
    );

    // So does signing out: nothing keeps following the order as a user who signed out. GraphiQL
    // sees the subscription end (its button runs again rather than stops).
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-execute-button[aria-label^="Stop"]').waitFor({ timeout: UI_TIMEOUT });
    await eventually(
      async () => stack.gateway.subscriptions(),
      (n) => n === before + 1,
      UI_TIMEOUT,
    );
    await badge.click();
    await page.locator('.explorer-session[data-session="anonymous"]').waitFor({ timeout: UI_TIMEOUT });
    await eventually(
      async () => stack.gateway.subscriptions(),
      (n) => n === before,
      UI_TIMEOUT,
    );
    await page.locator('.graphiql-execute-button[aria-label^="Execute"]').waitFor({ timeout: UI_TIMEOUT });
    expect(await responseText()).toBe('');
  });

  it('asked nothing of any host but the gateway, and logged no error', () => {
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((url) => !isLocal(url))).toEqual([]);
    expect(requests.filter((url) => new URL(url).origin !== base && !url.startsWith('data:'))).toEqual([]);
    expect(sockets.length).toBeGreaterThan(0);
    expect(sockets.filter((url) => new URL(url).host !== new URL(base).host)).toEqual([]);
    expect(problems).toEqual([]);
  });
});

/** The selection FollowOrder asks for (operations/orders/FollowOrder.graphql), and its answer's shape. */
const FOLLOWED = '{ id version status total lines { quantity product { name inStock } } customer { name } }';
interface Followed {
  id: string;
  version: number;
  status: string;
  total: number;
  lines: Array<{ quantity: number; product: { name: string; inStock: boolean | null } | null }>;
  customer: { name: string } | null;
}

/** The result pane's text, as GraphiQL wrote it (its editor draws only the lines in view). */
function responseText(): Promise<string> {
  return page
    .locator('.graphiql-response .CodeMirror')
    .evaluate((editor) => (editor as unknown as { CodeMirror?: { getValue(): string } }).CodeMirror?.getValue() ?? '', undefined, {
      timeout: UI_TIMEOUT,
    });
}

function parsed(text: string): { data?: { orderUpdated?: Followed } } | undefined {
  try {
    return JSON.parse(text) as { data?: { orderUpdated?: Followed } };
  } catch {
    return undefined;
  }
}

/**
 * Where a screenshot goes: `file` under docs/ (docs/explorer.png is the README's picture,
 * docs/explorer-plan.png its plan panel's, docs/explorer-subscription.png a followed order's) only when asked with UPDATE_SCREENSHOT=1, a temporary
 * file otherwise, so that `npm test` rewrites no tracked file.
 */
async function screenshotPath(file: string): Promise<string> {
  if (process.env.UPDATE_SCREENSHOT === '1') {
    await mkdir(path.dirname(file), { recursive: true });
    return file;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'explorer-shot-'));
  return path.join(dir, path.basename(file));
}
