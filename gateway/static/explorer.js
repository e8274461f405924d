/* global document, window, React, ReactDOM, GraphiQL, graphqlWs */
// The explorer page's boot script, served by the gateway at /explorer/assets/explorer.js. It is a
// file rather than an inline <script> so the page's Content-Security-Policy can say
// `script-src 'self'`: the browser then refuses any script that is not the gateway's own.
// React, ReactDOM, GraphiQL and graphqlWs are the UMD globals of the scripts loaded before this one.
(() => {
  'use strict';
  const config = JSON.parse(document.getElementById('explorer-config').textContent);
  const endpoint = new URL(config.endpoint, window.location.href).href;
  const h = React.createElement;

  // GraphiQL uses stored tabs over defaultTabs; a namespace per set of operations means a changed
  // operations folder shows its new tabs, while edits survive a reload meanwhile.
  const storage = GraphiQL.createLocalStorage({ namespace: `explorer:${config.version}` });
  // With no stored tabs, GraphiQL 3.9 opens the first tab but fills its editors from the stored
  // query and variables: on a first visit the first tab would show no variables, and after a
  // reload within the 500 ms it waits before storing tabs (the browser test does that), the
  // first tab would get the last query run, under that query's name, beside that query's own
  // tab. Store the first tab's own before it starts.
  try {
    if (storage.getItem('graphiql:tabState') === null && config.tabs.length > 0) {
      storage.setItem('graphiql:query', config.tabs[0].query);
      storage.setItem('graphiql:variables', config.tabs[0].variables);
    }
  } catch {
    // No localStorage (blocked by the browser): GraphiQL then runs without persistence.
  }

  // Signing in from the explorer: the access token a SignIn, SignUp or Refresh answer carries is
  // kept in this page's memory (never in storage) and sent as `Authorization: Bearer` with the
  // requests after it, unless the headers editor sets its own Authorization. The badge under the
  // title says who the requests run as and forgets the token on a click.
  const session = { token: null, user: null, listeners: new Set() };
  const setSession = (token, user) => {
    session.token = token;
    session.user = user;
    session.listeners.forEach((l) => l());
  };
  const hasHeader = (headers, name) => Object.keys(headers || {}).some((k) => k.toLowerCase() === name);
  const hasAuthorization = (headers) => hasHeader(headers, 'authorization');
  const remember = (result) => {
    const data = result && typeof result === 'object' ? result.data : null;
    if (!data || typeof data !== 'object') return;
    for (const value of Object.values(data)) {
      if (value && typeof value.accessToken === 'string') {
        setSession(value.accessToken, value.user && typeof value.user.id === 'string' ? value.user.id : 'you');
      }
    }
  };

  // Subscriptions run over graphql-transport-ws on the endpoint's own path (ws: or wss:, as the
  // page's scheme), everything else over HTTP. A browser cannot set headers on a WebSocket, so the
  // Authorization a request would carry (the headers editor's, else the signed-in token) goes in
  // connection_init's payload instead. A socket keeps the credentials it was opened with, so a
  // subscription under another Authorization gets a new client (lazy: no socket until something
  // subscribes), and a new fetcher around it. Signing in or out disposes a client made from the
  // session, which ends what it followed: nothing keeps running as a user who signed out. Queries
  // and mutations never replace it: GraphiQL stops a subscription before it runs anything else,
  // but its docs pane introspects whenever it likes.
  const sendHttp = GraphiQL.createFetcher({ url: endpoint });
  const wsEndpoint = (() => {
    const url = new URL(endpoint);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  })();
  let subscriptions = null;
  const dropSubscriptions = () => {
    if (subscriptions) subscriptions.wsClient.dispose();
    subscriptions = null;
  };
  const sendSubscription = (authorization, fromSession) => {
    if (!subscriptions || subscriptions.authorization !== authorization) {
      dropSubscriptions();
      const wsClient = graphqlWs.createClient({
        url: wsEndpoint,
        lazy: true,
        connectionParams: () => (authorization ? { authorization } : {}),
      });
      subscriptions = { authorization, fromSession, wsClient, send: GraphiQL.createFetcher({ url: endpoint, wsClient }) };
    }
    return subscriptions.send;
  };
  session.listeners.add(() => {
    if (subscriptions && subscriptions.fromSession) dropSubscriptions();
  });

  // The query plan panel: with the "Query plan" button pressed, operations are sent with Apollo
  // Router's `Apollo-Expose-Query-Plan: true`, and a gateway that allows it (EXPOSE_QUERY_PLAN, on
  // outside production) answers with the plan (`extensions.queryPlan`) and each subgraph call's
  // timing (`extensions.fetchTimings`), shown beside the result as a tree and a waterfall.
  // Introspection (the docs pane) is never sent with it: its plan is not the one being looked at.
  const PLAN_HEADER = 'apollo-expose-query-plan';
  const plan = { on: false, shown: null, listeners: new Set() };
  const setPlan = (changes) => {
    Object.assign(plan, changes);
    plan.listeners.forEach((l) => l());
  };
  const showPlan = (result) => {
    if (!plan.on || !result || typeof result !== 'object') return;
    const extensions = result.extensions || {};
    setPlan({ shown: { queryPlan: extensions.queryPlan || null, fetchTimings: extensions.fetchTimings || null } });
  };
  /** Redraws the calling component whenever `store` (the session, the plan) tells its listeners. */
  const useStore = (store) => {
    const [, redraw] = React.useState(0);
    React.useEffect(() => {
      const listener = () => redraw((n) => n + 1);
      store.listeners.add(listener);
      return () => store.listeners.delete(listener);
    }, []);
    return store;
  };
  const usePlan = () => useStore(plan);

  const fetcher = (params, options) => {
    const fromEditor = options && options.headers ? options.headers : {};
    let headers = fromEditor;
    if (session.token && !hasAuthorization(headers)) headers = { ...headers, authorization: `Bearer ${session.token}` };
    const introspection = params.operationName === 'IntrospectionQuery';
    if (plan.on && !introspection && !hasHeader(headers, PLAN_HEADER)) headers = { ...headers, [PLAN_HEADER]: 'true' };
    const seen = (part) => {
      remember(part);
      if (!introspection) showPlan(part);
    };
    const own = ownOperation(params, options);
    let send = sendHttp;
    if (own.subscription) {
      const authorization = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization');
      send = sendSubscription(authorization ? String(authorization[1]) : null, !hasAuthorization(fromEditor));
    }
    // GraphiQL's fetcher resolves to the result, or to an async iterable of results (its
    // multipart fetcher, used for every HTTP request by default, and a subscription): both are
    // looked into.
    return Promise.resolve(send(own.params, { ...own.options, headers })).then((result) => {
      if (result && typeof result[Symbol.asyncIterator] === 'function') return tap(result, seen);
      seen(result);
      return result;
    });
  };
  // An async iterable that shows each result to `seen` on its way to GraphiQL. Not an async
  // generator: GraphiQL stops a subscription with the iterator's return(), which a generator
  // waiting for the next event would queue until that event came; here it reaches graphql-ws at
  // once, and the subscription ends then.
  const tap = (iterable, seen) => {
    const inner = iterable[Symbol.asyncIterator]();
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: () =>
        inner.next().then((step) => {
          if (!step.done) seen(step.value);
          return step;
        }),
      return: (value) => (inner.return ? inner.return(value) : Promise.resolve({ done: true, value })),
    };
  };
  // GraphiQL 3.9 sends the operation name and the document its editor parsed last, about 100 ms
  // after an edit or a tab switch; a run inside that window sends the previous tab's name, which
  // the server refuses ("Unknown operation named ..."), and its document, by which GraphiQL's
  // fetcher would send a subscription over HTTP or a query over the WebSocket. Send the query's
  // own: its operation's name when the one given names none of them, and its parsed document.
  const ownOperation = (params, options) => {
    const unparsed = { params, options, subscription: false };
    if (typeof params.query !== 'string') return unparsed;
    let document;
    try {
      document = GraphiQL.GraphQL.parse(params.query);
    } catch {
      return unparsed; // a syntax error: the server says where
    }
    const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition');
    const nameOf = (d) => (d.name ? d.name.value : null);
    let operation = operations.find((d) => params.operationName && nameOf(d) === params.operationName);
    if (!operation && operations.length === 1) operation = operations[0];
    const operationName = operation ? nameOf(operation) : params.operationName;
    return {
      params: operationName === params.operationName ? params : { ...params, operationName },
      options: { ...options, documentAST: document },
      subscription: Boolean(operation && operation.operation === 'subscription'),
    };
  };

  const SessionBadge = () => {
    useStore(session);
    if (!session.token) {
      return h('span', { className: 'explorer-session', 'data-session': 'anonymous' }, 'anonymous: run SignIn to sign in');
    }
    return h(
      'button',
      {
        type: 'button',
        className: 'explorer-session',
        'data-session': session.user,
        title: 'Requests carry this access token unless the headers set Authorization. Click to forget it.',
        onClick: () => setSession(null, null),
      },
      `signed in as ${session.user} \u00b7 sign out`,
    );
  };

  // A button in GraphiQL's toolbar beside the editor (prettify, merge, copy): the title area has
  // no room left for another line.
  const planIcon = h(
    'svg',
    { className: 'graphiql-toolbar-icon', viewBox: '0 0 24 24', fill: 'currentColor', 'aria-hidden': 'true' },
    h('rect', { x: 2, y: 4, width: 9, height: 3, rx: 1 }),
    h('rect', { x: 7, y: 10.5, width: 8, height: 3, rx: 1 }),
    h('rect', { x: 12, y: 17, width: 10, height: 3, rx: 1 }),
  );
  const PlanToggle = () => {
    const { on } = usePlan();
    return h(
      // @graphiql/react's components are the UMD build's GraphiQL.React.
      GraphiQL.React.ToolbarButton,
      {
        label: 'Query plan',
        className: on ? 'explorer-plan-on' : undefined,
        'aria-pressed': on ? 'true' : 'false',
        onClick: () => setPlan({ on: !on, shown: null }),
      },
      planIcon,
    );
  };

  const ms = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
  // One colour per subgraph, the same in the tree and the waterfall: distinct hues handed out in the
  // order subgraphs are first seen (a hash of the name gave neighbours look-alike colours).
  const HUES = [205, 25, 140, 280, 350, 175, 50, 245];
  const hues = new Map();
  const swatch = (name) => {
    if (!hues.has(name)) hues.set(name, HUES[hues.size % HUES.length]);
    return { background: `hsl(${hues.get(name)} 60% 55%)` };
  };

  const PlanTree = ({ node, timings }) => {
    const item = (label, children) =>
      h(
        'li',
        { 'data-kind': node.kind },
        h('span', { className: 'explorer-plan-node' }, ...label),
        children.length > 0 ? h('ul', null, ...children.map((child, i) => h(PlanTree, { key: i, node: child, timings }))) : null,
      );
    switch (node.kind) {
      case 'Sequence':
      case 'Parallel':
        return item([node.kind], node.nodes);
      case 'Flatten':
        return item(['Flatten ', h('code', null, node.path.join('.'))], [node.node]);
      case 'Condition':
        return item(['Condition ', h('code', null, `$${node.condition}`)], [node.ifClause, node.elseClause].filter(Boolean));
      case 'Fetch': {
        const timing = timings && timings.find((t) => t.fetchId === node.id);
        return h(
          'li',
          { 'data-kind': 'Fetch', 'data-subgraph': node.serviceName, 'data-fetch-id': node.id },
          h(
            'span',
            { className: 'explorer-plan-node' },
            h('span', { className: 'explorer-plan-swatch', style: swatch(node.serviceName) }),
            'Fetch ',
            h('strong', null, node.serviceName),
            node.entities ? ' _entities' : '',
            timing ? h('span', { className: 'explorer-plan-muted' }, ` ${ms(timing.duration)}`) : null,
          ),
          h('details', null, h('summary', null, 'operation'), h('pre', null, node.operation)),
        );
      }
      default:
        return item([node.kind], [node.primary, node.rest, ...(node.deferred || [])].filter(Boolean));
    }
  };

  const Waterfall = ({ timings }) => {
    const end = Math.max(...timings.map((t) => t.start + t.duration), 0.001);
    return h(
      'div',
      { className: 'explorer-waterfall' },
      ...timings.map((t, i) =>
        h(
          'div',
          { key: i, className: 'explorer-waterfall-row', 'data-subgraph': t.subgraph, 'data-fetch-id': t.fetchId },
          h(
            'div',
            { className: 'explorer-waterfall-label', title: t.path.length > 0 ? t.path.join('.') : 'root fetch' },
            h('strong', null, t.subgraph),
            ` ${ms(t.duration)} \u00b7 ${t.representations} rep${t.representations === 1 ? '' : 's'}`,
            t.cacheHits + t.memoHits > 0 ? ` (${t.cacheHits + t.memoHits} cached)` : '',
            t.errors > 0 ? h('span', { className: 'explorer-plan-error' }, ` \u00b7 ${t.errors} error${t.errors === 1 ? '' : 's'}`) : null,
          ),
          h(
            'div',
            { className: 'explorer-waterfall-track' },
            h('div', {
              className: 'explorer-waterfall-bar',
              title: `starts at ${ms(t.start)}, takes ${ms(t.duration)}`,
              style: { ...swatch(t.subgraph), left: `${(t.start / end) * 100}%`, width: `${(t.duration / end) * 100}%` },
            }),
          ),
        ),
      ),
      h('div', { className: 'explorer-waterfall-axis' }, h('span', null, '0'), h('span', null, ms(end))),
    );
  };

  const PlanPanel = () => {
    const { shown } = usePlan();
    let body;
    if (!shown) body = h('p', { className: 'explorer-plan-muted' }, 'Run an operation to see how the gateway plans it.');
    else if (!shown.queryPlan) {
      body = h(
        'p',
        { className: 'explorer-plan-muted' },
        'The gateway sent no plan: EXPOSE_QUERY_PLAN is off there (its default in production), or the operation never ran.',
      );
    } else {
      const { queryPlan, fetchTimings } = shown;
      body = [
        h('h3', { key: 'fh' }, 'Fetches'),
        fetchTimings
          ? h(Waterfall, { key: 'w', timings: fetchTimings })
          : h(
              'p',
              { key: 'w', className: 'explorer-plan-muted' },
              `No timings: ${queryPlan.executor}'s executor ran the plan (PLAN_EXECUTOR).`,
            ),
        h('h3', { key: 'th' }, 'Plan'),
        queryPlan.tree
          ? h('ul', { key: 't', className: 'explorer-plan-tree' }, h(PlanTree, { node: queryPlan.tree, timings: fetchTimings }))
          : h('p', { key: 't', className: 'explorer-plan-muted' }, 'No fetch: the gateway answered on its own.'),
        h('details', { key: 'x' }, h('summary', null, 'as text'), h('pre', null, queryPlan.text)),
      ];
    }
    return h('aside', { className: 'explorer-plan', 'aria-label': 'Query plan' }, h('h2', null, 'Query plan'), body);
  };

  const logo = h(
    GraphiQL.Logo,
    null,
    config.title,
    h('span', { className: 'explorer-endpoint', title: 'Operations are sent to this endpoint' }, endpoint),
    h(SessionBadge),
  );

  // Made once: toggling the panel re-renders the layout around GraphiQL, never GraphiQL itself.
  const graphiql = h(
    GraphiQL,
    {
      fetcher,
      storage,
      defaultTabs: config.tabs,
      defaultEditorToolsVisibility: 'variables',
      isHeadersEditorEnabled: true,
      // Headers carry credentials (auth): never write them to localStorage.
      shouldPersistHeaders: false,
      toolbar: { additionalContent: h(PlanToggle) },
    },
    logo,
  );
  const Layout = () => {
    const { on } = usePlan();
    return h('div', { className: 'explorer-layout' }, graphiql, on ? h(PlanPanel) : null);
  };

  ReactDOM.createRoot(document.getElementById('graphiql')).render(h(Layout));
})();
