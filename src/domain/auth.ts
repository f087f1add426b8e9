import type { Mode, Role } from '../generated/prisma/enums.js';

/** Who is calling. The credential fixes workspace, mode and role; nothing in a request can change them. */
export interface Auth {
  workspaceId: string;
  mode: Mode;
  role: Role;
  /** The API key behind the credential (secret key or access token). */
  apiKeyId: string | null;
  /** Set for PARTNER credentials: the only partner whose data they may see. */
  partnerId: string | null;
  credential: 'secret_key' | 'access_token' | 'partner_token' | 'member_session';
  /** Set for member sessions (the dashboard's cookie): the signed-in member. */
  memberId?: string | null;
  /** Set for member sessions: the session's id (the SHA-256 of its token). */
  sessionId?: string | null;
}
