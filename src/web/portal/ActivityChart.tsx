// Clicks and conversions per day over the last 30 days, drawn with uPlot on a canvas. uPlot sizes
// its elements through the CSSOM (element.style), which the page's `style-src 'self'` allows; its
// stylesheet is bundled from the package (no <style> element, no inline style attribute).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatCount } from '../lib/format.js';

export interface DayBucket {
  start: string;
  clicks: number;
  conversions: number;
}

const CLICKS = '#1d4ed8';
const CONVERSIONS = '#b45309';

export function ActivityChart({ series }: { series: readonly DayBucket[] }) {
  const box = useRef<HTMLDivElement>(null);
  const clicks = series.reduce((sum, b) => sum + b.clicks, 0);
  const conversions = series.reduce((sum, b) => sum + b.conversions, 0);

  const plot = useRef<uPlot | null>(null);
  const data: uPlot.AlignedData = [
    series.map((b) => Date.parse(b.start) / 1000),
    series.map((b) => b.clicks),
    series.map((b) => b.conversions),
  ];

  // The chart is made once; new figures (after a live event) are drawn into it with setData.
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const size = () => ({ width: Math.max(element.clientWidth, 200), height: 220 });
    const chart = new uPlot(
      {
        ...size(),
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(max, 4)] } },
        axes: [{ stroke: '#374151' }, { stroke: '#374151', values: (_u, ticks) => ticks.map((t) => formatCount(t)) }],
        series: [
          {},
          { label: 'Clicks', stroke: CLICKS, width: 2, fill: 'rgba(29, 78, 216, 0.08)' },
          { label: 'Conversions', stroke: CONVERSIONS, width: 2 },
        ],
      },
      data,
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize(size()));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(data);
  }, [series]);

  return (
    <section aria-labelledby="chart-title">
      <h2 id="chart-title">Last 30 days</h2>
      <figure class="chart">
        <div
          ref={box}
          class="chart-canvas"
          role="img"
          aria-label={`Clicks and conversions per day (UTC) over the last 30 days: ${formatCount(clicks)} clicks, ${formatCount(conversions)} conversions.`}
        />
        <figcaption class="hint">
          Clicks and conversions per day (UTC): {formatCount(clicks)} clicks and {formatCount(conversions)} conversions
          in all.
        </figcaption>
      </figure>
    </section>
  );
}
