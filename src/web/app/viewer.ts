// Who is looking: the credential's role and mode, from Query.viewer. READ_ONLY viewers get no
// mutation buttons (the server refuses their mutations anyway).
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface ViewerInfo {
  role: 'ADMIN' | 'READ_ONLY' | 'PARTNER';
  mode: 'TEST' | 'LIVE';
  workspaceName: string;
  /** The signed-in member's email, or null for an access token. */
  memberEmail: string | null;
}

export const ViewerContext = createContext<ViewerInfo | null>(null);

export function useViewer(): ViewerInfo {
  const viewer = useContext(ViewerContext);
  if (!viewer) throw new Error('useViewer outside of the ViewerContext');
  return viewer;
}

/** May the viewer change things (ADMIN)? */
export function useCanWrite(): boolean {
  return useViewer().role === 'ADMIN';
}
