// A line chart of daily buckets (uPlot: canvas, no inline style elements, so the CSP holds).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  values: number[];
  color: string;
}

/** `x` in seconds since the epoch (the buckets' starts). */
export function LineChart({ title, x, series }: { title: string; x: number[]; series: ChartSeries[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(260, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 180,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [{ stroke: '#374151' }, { stroke: '#374151', size: 48 }],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false } }))],
      },
      [x, ...series.map((s) => s.values)],
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize({ width: width(), height: 180 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [x, series]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div
        ref={box}
        role="img"
        aria-label={`${title}: ${series.map((s) => `${s.label} ${sum(s.values)}`).join(', ')}`}
      />
    </figure>
  );
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** From..to for the last `days` days, as ISO strings, to the minute (stable across re-renders). */
export function lastDays(days: number): { from: string; to: string } {
  const to = new Date();
  to.setUTCSeconds(0, 0);
  to.setUTCMinutes(0);
  to.setUTCHours(to.getUTCHours() + 1);
  const from = new Date(to.getTime() - days * 86_400_000);
  return { from: from.toISOString(), to: to.toISOString() };
}
