/**
 * Yields once per burst of source items, at most once per `intervalMs`: after a quiet period at
 * once, otherwise when the interval since the last yield has passed. Consumers read the latest
 * state when they are woken, so nothing is lost by coalescing. The source is returned when the
 * consumer stops (or the source ends); its failure is thrown once the last burst is yielded.
 */
export async function* throttle(source: AsyncGenerator<unknown>, intervalMs: number): AsyncGenerator<void> {
  let dirty = false;
  let done = false;
  let failure: unknown = null;
  const signal: { wake: (() => void) | null } = { wake: null };
  const pump = (async () => {
    try {
      for await (const _ of source) {
        dirty = true;
        signal.wake?.();
      }
    } catch (error) {
      failure = error;
    } finally {
      done = true;
      signal.wake?.();
    }
  })();
  let last = 0;
  try {
    for (;;) {
      if (!dirty) {
        if (done) break;
        await new Promise<void>((resolve) => (signal.wake = resolve));
        signal.wake = null;
        continue;
      }
      const wait = last + intervalMs - Date.now();
      // The throttle itself, not a stand-in for synchronisation (the global timer: fake timers in tests).
      if (wait > 0) await new Promise<void>((resolve) => setTimeout(resolve, wait));
      dirty = false;
      last = Date.now();
      yield;
    }
    if (failure) throw failure;
  } finally {
    await source.return(undefined);
    await pump;
  }
}
