// UUIDv7 generators side by side, in one process, as the click path uses them: 16 bytes, the
// millisecond they carry (the click's occurredAt) and the text form (the row id). Not a suite of
// `npm run bench` (no database, no server): `npx tsx scripts/bench/uuid.ts [--rounds 15] [--ms 400]`.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { v7 } from 'uuid';
import { formatUuid, uuidv7, uuidv7Bytes } from '../../src/lib/uuid.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '15' }, ms: { type: 'string', default: '400' } },
});
const rounds = Number(values.rounds);
const windowMs = Number(values.ms);

interface Generator {
  name: string;
  /** One id; returns something derived from it so the work cannot be skipped. */
  once(): number;
}

const generators: Generator[] = [
  {
    name: 'hand-written: uuidv7Bytes() + formatUuid (click path today)',
    once: () => {
      const { bytes, ms } = uuidv7Bytes();
      return formatUuid(bytes).length + ms;
    },
  },
  {
    name: 'uuid v7(undefined, buffer) + readUIntBE + formatUuid',
    once: () => {
      const bytes = v7(undefined, Buffer.allocUnsafe(16));
      return formatUuid(bytes).length + bytes.readUIntBE(0, 6);
    },
  },
  { name: 'hand-written: uuidv7() (text)', once: () => uuidv7().length },
  { name: 'uuid v7() (text)', once: () => v7().length },
];

/** Operations per second of `generator` over one window of windowMs. */
function measure(generator: Generator): number {
  let sink = 0;
  let ops = 0;
  const start = performance.now();
  const end = start + windowMs;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 1000; i++) sink += generator.once();
    ops += 1000;
    now = performance.now();
  }
  if (sink === 42) console.log(''); // keeps `sink` alive
  return ops / ((now - start) / 1000);
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

// One unmeasured round warms every generator up; then each round runs them all, in a rotating
// order so none always follows the same one.
for (const g of generators) measure(g);
const samples = generators.map(() => [] as number[]);
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < generators.length; k++) {
    const i = (k + round) % generators.length;
    samples[i]!.push(measure(generators[i]!));
  }
}

console.log(
  `node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}; ${rounds} rounds of ${windowMs} ms each`,
);
const base = median(samples[0]!);
console.log('| generator | median ops/s | min | max | vs click path today |');
console.log('|---|---:|---:|---:|---:|');
generators.forEach((g, i) => {
  const s = samples[i]!;
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(
    `| ${g.name} | ${fmt(median(s))} | ${fmt(Math.min(...s))} | ${fmt(Math.max(...s))} | ${(median(s) / base).toFixed(2)}× |`,
  );
});
