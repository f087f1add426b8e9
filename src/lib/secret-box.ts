import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

/**
 * Seals secrets that refgraph must keep in clear to use (a payment provider's signing secret) but
 * that nobody should read back: AES-256-GCM under a key derived (HKDF-SHA256) from the
 * installation secret and a purpose, with associated data that ties each sealed value to its row
 * (a sealed value copied to another row does not open). A database dump alone does not reveal them
 * when REFGRAPH_SECRET is set in the environment; changing the installation secret makes them
 * unreadable (the integrations must be connected again).
 *
 * Format: `v1.<iv>.<ciphertext>.<tag>` (base64url).
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(installationSecret: string, purpose: string) {
    this.key = Buffer.from(hkdfSync('sha256', installationSecret, 'refgraph-secret-box', purpose, 32));
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, ciphertext, cipher.getAuthTag()]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  /** The plaintext, or null when the value was not sealed by this box for this associated data. */
  open(sealed: string, associatedData: string): string | null {
    const [version, iv, ciphertext, tag] = sealed.split('.');
    if (version !== VERSION || !iv || ciphertext === undefined || !tag) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
