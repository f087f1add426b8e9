// Which objects a heap grew by between two snapshots, per subscriber (or any unit): nodes counted
// and their self sizes summed by V8 node type and name, after − before, divided by `per`.
//
//   npx tsx scripts/bench/heap-diff.ts before.heapsnapshot after.heapsnapshot 1000 [top=40]
//
// The fan-out benchmark writes such a pair with `--heap-snapshots DIR` (before the subscribers
// connect, after the warm-up event reached them all).
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function tally(file: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    let name = snap.strings[snap.nodes[i + nameAt]!] ?? '';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}\t${name}`;
    const entry = out.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += snap.nodes[i + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}

const [beforeFile, afterFile, perText, topText] = process.argv.slice(2);
if (!beforeFile || !afterFile) throw new Error('usage: heap-diff.ts before after [per] [top]');
const per = Number(perText ?? 1);
const before = tally(beforeFile);
const after = tally(afterFile);
const rows: Array<{ key: string; count: number; size: number }> = [];
for (const [key, a] of after) {
  const b = before.get(key) ?? { count: 0, size: 0 };
  rows.push({ key, count: (a.count - b.count) / per, size: (a.size - b.size) / per });
}
rows.sort((x, y) => y.size - x.size);
const total = rows.reduce((sum, r) => sum + r.size, 0);
console.log(`total ${total.toFixed(0)} bytes per unit (${per})`);
console.log('bytes\tcount\ttype\tname');
for (const r of rows.slice(0, Number(topText ?? 40)))
  console.log(`${r.size.toFixed(0)}\t${r.count.toFixed(2)}\t${r.key}`);
