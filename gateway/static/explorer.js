/* global document, window, React, ReactDOM, GraphiQL */
// The explorer page's boot script, served by the gateway at /explorer/assets/explorer.js. It is a
// file rather than an inline <script> so the page's Content-Security-Policy can say
// `script-src 'self'`: the browser then refuses any script that is not the gateway's own.
// React, ReactDOM and GraphiQL are the UMD globals of the scripts loaded before this one.
(() => {
  'use strict';
  const config = JSON.parse(document.getElementById('explorer-config').textContent);
  const endpoint = new URL(config.endpoint, window.location.href).href;
  const h = React.createElement;

  // GraphiQL uses stored tabs over defaultTabs; a namespace per set of operations means a changed
  // operations folder shows its new tabs, while edits survive a reload meanwhile.
  const storage = GraphiQL.createLocalStorage({ namespace: `explorer:${config.version}` });
  // GraphiQL 3.9 opens the first tab's query but fills the variables editor from storage only,
  // so on a first visit the first tab would show no variables: store them before it starts.
  try {
    if (storage.getItem('graphiql:tabState') === null && config.tabs.length > 0) {
      storage.setItem('graphiql:variables', config.tabs[0].variables);
    }
  } catch {
    // No localStorage (blocked by the browser): GraphiQL then runs without persistence.
  }

  // GraphiQL 3.9 sends the operation name its editor parsed last, about 100 ms after an edit or a
  // tab switch; a run inside that window sends the previous tab's name, which the server refuses
  // ("Unknown operation named ..."). Send the name of the operation the query actually holds.
  const send = GraphiQL.createFetcher({ url: endpoint });

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
  const hasAuthorization = (headers) => Object.keys(headers || {}).some((k) => k.toLowerCase() === 'authorization');
  const remember = (result) => {
    const data = result && typeof result === 'object' ? result.data : null;
    if (!data || typeof data !== 'object') return;
    for (const value of Object.values(data)) {
      if (value && typeof value.accessToken === 'string') {
        setSession(value.accessToken, value.user && typeof value.user.id === 'string' ? value.user.id : 'you');
      }
    }
  };
  const fetcher = (params, options) => {
    const headers = options && options.headers ? options.headers : {};
    const withToken =
      session.token && !hasAuthorization(headers)
        ? { ...options, headers: { ...headers, authorization: `Bearer ${session.token}` } }
        : options;
    // GraphiQL's fetcher resolves to the result, or to an async iterable of results (its
    // multipart fetcher, used for every request by default): both are looked into.
    return Promise.resolve(send(withOwnOperationName(params), withToken)).then((result) => {
      if (result && typeof result[Symbol.asyncIterator] === 'function') {
        return (async function* () {
          for await (const part of result) {
            remember(part);
            yield part;
          }
        })();
      }
      remember(result);
      return result;
    });
  };
  const withOwnOperationName = (params) => {
    if (!params.operationName || typeof params.query !== 'string') return params;
    let operations;
    try {
      operations = GraphiQL.GraphQL.parse(params.query).definitions.filter((d) => d.kind === 'OperationDefinition');
    } catch {
      return params; // a syntax error: the server says where
    }
    if (operations.some((d) => d.name && d.name.value === params.operationName)) return params;
    if (operations.length !== 1) return params;
    return { ...params, operationName: operations[0].name ? operations[0].name.value : null };
  };

  const SessionBadge = () => {
    const [, redraw] = React.useState(0);
    React.useEffect(() => {
      const listener = () => redraw((n) => n + 1);
      session.listeners.add(listener);
      return () => session.listeners.delete(listener);
    }, []);
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

  const logo = h(
    GraphiQL.Logo,
    null,
    config.title,
    h('span', { className: 'explorer-endpoint', title: 'Operations are sent to this endpoint' }, endpoint),
    h(SessionBadge),
  );

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    h(
      GraphiQL,
      {
        fetcher,
        storage,
        defaultTabs: config.tabs,
        defaultEditorToolsVisibility: 'variables',
        isHeadersEditorEnabled: true,
        // Headers carry credentials (auth): never write them to localStorage.
        shouldPersistHeaders: false,
      },
      logo,
    ),
  );
})();
