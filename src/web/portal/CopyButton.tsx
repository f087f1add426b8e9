import { useEffect, useState } from 'preact/hooks';

/** Copies `text` to the clipboard; says "Copied" (to the eye and to screen readers) for two seconds. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const timer = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(timer);
  }, [state]);

  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      // No clipboard access (a page served over plain http, or the permission refused).
      setState('failed');
    }
  }

  return (
    <span class="copy">
      <button type="button" class={state === 'copied' ? 'copied' : undefined} aria-label={label} onClick={copy}>
        {state === 'copied' ? 'Copied' : 'Copy'}
      </button>
      <span role="status" class={state === 'failed' ? 'copy-status error' : 'sr-only'}>
        {state === 'copied'
          ? 'Copied to the clipboard'
          : state === 'failed'
            ? 'Could not copy: select the link and copy it'
            : ''}
      </span>
    </span>
  );
}
