// API keys: the list (never a secret: only hints), create (the secret shown once), revoke. ADMIN only.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import { formatDateTime } from '../../lib/format.js';
import { Count, Empty, Loading, RequestError, UserErrors, mutationErrors, type UserErrorLike } from '../ui/feedback.js';
import { ConfirmAction } from '../ui/confirm.js';
import { useCanWrite, useViewer } from '../viewer.js';
import { Table } from '../ui/paged.js';

const KeysQuery = graphql(`
  query ApiKeysList($includeRevoked: Boolean) {
    apiKeys(first: 100, includeRevoked: $includeRevoked) {
      totalCount
      edges {
        node {
          id
          name
          role
          mode
          accessKeyId
          secretHint
          createdAt
          lastUsedAt
          revokedAt
        }
      }
    }
  }
`);

const CreateKey = graphql(`
  mutation ApiKeysCreate($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      apiKey {
        id
        name
        accessKeyId
      }
      secret
      userErrors {
        code
        message
        field
      }
    }
  }
`);

const RevokeKey = graphql(`
  mutation ApiKeysRevoke($input: RevokeApiKeyInput!) {
    revokeApiKey(input: $input) {
      apiKey {
        id
        revokedAt
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

export function ApiKeysPage() {
  const canWrite = useCanWrite();
  const { mode } = useViewer();
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const [result, refetch] = useQuery({ query: KeysQuery, variables: { includeRevoked } });
  const rows = result.data?.apiKeys.edges.map((e) => e.node) ?? [];
  const reload = () => refetch({ requestPolicy: 'network-only' });
  return (
    <>
      <h1>API keys</h1>
      {canWrite && <CreateKeyForm mode={mode} onCreated={reload} />}
      <section class="card" aria-labelledby="keys-heading">
        <h2 id="keys-heading">
          Keys of {mode.toLowerCase()} mode <Count n={result.data?.apiKeys.totalCount} />
        </h2>
        <form class="filters" aria-label="Filter keys" onSubmit={(e) => e.preventDefault()}>
          <label class="check-label">
            <input
              type="checkbox"
              checked={includeRevoked}
              onChange={(e) => setIncludeRevoked(e.currentTarget.checked)}
            />
            Show revoked keys
          </label>
        </form>
        <RequestError error={result.error} />
        {result.fetching && !result.data && <Loading what="keys" />}
        {result.data && rows.length === 0 && <Empty>No keys.</Empty>}
        {rows.length > 0 && (
          <Table columns={['Name', 'Role', 'Key', 'Created', 'Last used', canWrite && 'Actions']}>
            {rows.map((key) => (
              <tr key={key.id} class={key.revokedAt ? 'revoked' : undefined}>
                <td>{key.name}</td>
                <td>{key.role.toLowerCase().replace('_', '-')}</td>
                <td class="small">
                  <code>{key.secretHint}</code>
                  <div class="muted">
                    access key id <code>{key.accessKeyId}</code>
                  </div>
                </td>
                <td>{formatDateTime(key.createdAt)}</td>
                <td>{key.lastUsedAt ? formatDateTime(key.lastUsedAt) : 'never'}</td>
                {canWrite && (
                  <td>
                    {key.revokedAt ? (
                      <span class="tag status-canceled">revoked {formatDateTime(key.revokedAt)}</span>
                    ) : (
                      <ConfirmAction
                        action="Revoke"
                        subject={key.name}
                        warning="Everything using it stops working."
                        mutation={RevokeKey}
                        variables={{ input: { id: key.id } }}
                        userErrors={(data) => data.revokeApiKey.userErrors}
                        onDone={reload}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </Table>
        )}
      </section>
    </>
  );
}

function CreateKeyForm({ mode, onCreated }: { mode: string; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<'ADMIN' | 'READ_ONLY'>('READ_ONLY');
  const [state, create] = useMutation(CreateKey);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [secret, setSecret] = useState<{ name: string; value: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setSecret(null);
    setCopied(false);
    const response = await create({ input: { name: name.trim(), role } });
    const payload = response.data?.createApiKey;
    const found = mutationErrors(response, payload?.userErrors);
    setErrors(found);
    if (found.length === 0 && payload?.secret && payload.apiKey) {
      setSecret({ name: payload.apiKey.name, value: payload.secret });
      setName('');
      onCreated();
    }
  };
  return (
    <section class="card" aria-labelledby="create-key-heading">
      <h2 id="create-key-heading">Create a key</h2>
      <form class="form-row" onSubmit={submit}>
        <label>
          Name
          <input type="text" required value={name} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as 'ADMIN' | 'READ_ONLY')}>
            <option value="READ_ONLY">read-only</option>
            <option value="ADMIN">admin</option>
          </select>
        </label>
        <button type="submit" class="primary" disabled={state.fetching || name.trim() === ''}>
          Create {mode.toLowerCase()} key
        </button>
      </form>
      <UserErrors errors={errors} />
      {secret && (
        <div class="secret" role="status">
          <p>
            <strong>The secret of “{secret.name}”</strong> — copy it now: it is shown only once (refgraph keeps only its
            hash).
          </p>
          <code class="break" data-secret>
            {secret.value}
          </code>
          <div class="actions">
            <button
              type="button"
              class="small"
              onClick={async () => {
                await navigator.clipboard?.writeText(secret.value);
                setCopied(true);
              }}
            >
              {copied ? 'Copied' : 'Copy'}
            </button>
            <button type="button" class="small" onClick={() => setSecret(null)}>
              I have saved it
            </button>
          </div>
        </div>
      )}
    </section>
  );
}
