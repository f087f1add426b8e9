import { Provider } from '@urql/preact';
import { render } from 'preact';
import { useCallback, useState } from 'preact/hooks';
import { createRefgraphClient } from '../lib/client.js';
import '../lib/style.css';
import './portal.css';
import { LinkProblem, Portal } from './Portal.js';
import { forgetPortalToken, takePortalToken } from './token.js';

// The partner token comes in the fragment (/portal/#token=…), which browsers never send to a
// server; it is kept for this tab and taken out of the address bar (token.ts).
const token = takePortalToken();
// A new link opened in this tab changes only the fragment, which loads nothing: start again with it.
addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
});

function Root() {
  const [refused, setRefused] = useState(false);
  const onRefused = useCallback(() => {
    forgetPortalToken();
    setRefused(true);
  }, []);
  if (!token || refused) return <LinkProblem expired={refused} />;
  return (
    <Provider value={createRefgraphClient({ kind: 'token', token })}>
      <Portal onRefused={onRefused} />
    </Provider>
  );
}

render(<Root />, document.getElementById('root')!);
