import { isbot } from 'isbot';

// Which clicks come from bots: crawlers, monitors, and the link previews of chat and social apps
// (Slackbot, facebookexternalhit, Twitterbot, WhatsApp, Discordbot, …), by user agent. The list
// is the `isbot` package's (maintained, updated with new agents), not a pattern kept here.

/** User agents remembered at most; when full the cache starts over (like the redirect's URL templates). */
const CACHE_MAX = 5_000;
const verdicts = new Map<string, boolean>();

/**
 * Whether this user agent is a bot's or a link preview's. No user agent is not a bot: plenty of
 * integrations call `trackClick` without one.
 *
 * `isbot` runs one large regular expression: 2–9 µs for a browser's user agent, up to a quarter
 * of the server CPU a whole redirect takes. Visitors share a few thousand user agents, so the
 * verdict is remembered per user agent and a click usually costs one Map lookup (under 0.1 µs).
 */
export function isBotUserAgent(userAgent: string | null | undefined): boolean {
  if (!userAgent) return false;
  let verdict = verdicts.get(userAgent);
  if (verdict === undefined) {
    verdict = isbot(userAgent);
    if (verdicts.size >= CACHE_MAX) verdicts.clear();
    verdicts.set(userAgent, verdict);
  }
  return verdict;
}
