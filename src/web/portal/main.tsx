import { Provider, useQuery } from '@urql/preact';
import { render } from 'preact';
import { graphql } from '../gql/index.js';
import { createRefgraphClient } from '../lib/client.js';
import '../lib/style.css';

// The partner token comes in the fragment (/portal/#token=…), which browsers never send to a server.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
const client = createRefgraphClient({ kind: 'token', token });

const PortalViewer = graphql(`
  query PortalViewer {
    viewer {
      partner {
        id
        name
      }
    }
  }
`);

function Portal() {
  const [{ data, error }] = useQuery({ query: PortalViewer });
  if (error) return <p role="alert">{error.message}</p>;
  return (
    <main>
      <h1>{data?.viewer.partner?.name ?? 'Partner portal'}</h1>
    </main>
  );
}

render(
  <Provider value={client}>
    <Portal />
  </Provider>,
  document.getElementById('root')!,
);
