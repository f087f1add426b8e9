import { Provider } from '@urql/preact';
import { render } from 'preact';
import { createRefgraphClient } from '../lib/client.js';
import '../lib/style.css';

const client = createRefgraphClient({ kind: 'session' });

function App() {
  return (
    <main>
      <h1>refgraph</h1>
    </main>
  );
}

render(
  <Provider value={client}>
    <App />
  </Provider>,
  document.getElementById('root')!,
);
