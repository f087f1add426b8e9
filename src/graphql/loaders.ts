import DataLoader from 'dataloader';
import type { Context } from '../context.js';

/**
 * The request's DataLoader called `name`, created on first use. Loaders live exactly as long as
 * one request (or one subscription event), so nothing is cached across callers.
 */
export function loader<K, V, C = K>(
  ctx: Context,
  name: string,
  batch: (keys: readonly K[]) => Promise<ArrayLike<V | Error>>,
  options?: DataLoader.Options<K, V, C>,
): DataLoader<K, V, C> {
  return ctx.loaders.get(name, () => new DataLoader<K, V, C>(batch, { maxBatchSize: 1000, ...options }));
}
