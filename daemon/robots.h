/* robots.h - robots.txt (RFC 9309), pure: parses a body for one crawler's product token into the
 * rules of the group(s) that apply to it, and answers "may this request target be fetched?" and
 * "what Crawl-delay was asked for?". No I/O, no logging, no globals; one allocation per result.
 *
 * Parsing (never fails on content; a line that does not parse is skipped):
 * - The body is cut at ROBOTS_MAX_BYTES; when it is longer, the line the cut falls in is dropped
 *   too (a cut "Allow: /public/x" would otherwise become a wider "Allow: /p").
 * - A UTF-8 BOM at the start is skipped. Lines end at CR, LF or CRLF. '#' starts a comment anywhere.
 *   A line is "key: value"; spaces and tabs around both are ignored; keys are case-insensitive; a
 *   line without ':' is skipped.
 * - Keys: "user-agent" (also "useragent", "user agent"), "allow", "disallow" (also the common
 *   misspellings "dissallow", "dissalow", "disalow", "diasllow", "disallaw", as RFC 9309 2.2.4
 *   permits), "crawl-delay". Any other line (Sitemap, unknown keys, garbage) is ignored and ends
 *   neither a group nor a run of user-agent lines.
 * - A group is a run of user-agent lines and the allow/disallow/crawl-delay lines after it; the next
 *   user-agent line after such a line starts a new group. Lines before the first user-agent line
 *   are ignored (RFC 9309 2.2.2).
 * - A user-agent value matches when its leading run of letters, '-' and '_' equals product_token
 *   case-insensitively (RFC 9309 2.2.1): "FooBot/1.2", "foobot 2" and "foobot2" all match
 *   "foobot"; "foobot-x" does not. The value is the "*" group when it is "*" or starts with "*"
 *   and a space or tab. All groups that match the token are merged, and then "*" groups do not
 *   apply even when the merged group has no rules; when no group matches, all "*" groups are merged
 *   and used; when there is none either, everything is allowed.
 *
 * Rules and matching:
 * - An empty allow or disallow value is no rule. A trailing '$' anchors the pattern at the end of
 *   the target; any other '$' is literal. '*' matches any run of octets (also none, also '/');
 *   runs of '*' count as one '*'.
 * - Percent-encoding: patterns and targets are compared after decoding every valid "%XX" to its
 *   octet (hex case-insensitive; a '%' not followed by two hex digits stays a literal '%', so it
 *   equals "%25"; nothing is decoded twice). So "%62" equals "b", "%e3%83%84" equals "%E3%83%84"
 *   equals the raw UTF-8 of U+30C4, and "%2A" / "%24" in a rule are a literal '*' / '$' that match
 *   a raw '*' / '$' in the target (RFC 9309 2.2.2 and 2.2.3 examples). Consequence: reserved
 *   characters match their encoded forms too ("/a%2Fb" and "/a/b" are the same target, "/a%3Fb"
 *   and "/a?b" too); RFC 9309's own examples need this for ':', '/', '*' and '$'.
 * - A rule whose decoded pattern does not start with '/' or '*' (e.g. "Disallow: private" or a full
 *   URL) could never match a target, which always starts with '/'; it is dropped at parse time
 *   (RFC 9309 2.2.2 lets crawlers ignore it), so it takes no rule slot.
 * - A rule whose pattern has over ROBOTS_MAX_PATTERN_BYTES decoded octets is dropped too: it could
 *   not match the part of a target that is examined.
 * - The most specific matching rule wins: the one with the longest pattern, counted as decoded
 *   octets plus one per run of '*' and one for the anchoring '$'. On equal length, allow wins. No
 *   matching rule: allowed.
 * - Matching is greedy per '*'-separated piece with memmem(), so it costs O(pattern + target) per
 *   rule, never exponential, whatever the pattern; rules are tried longest first and the first
 *   match decides.
 * - Crawl-delay (non-standard): "N", "N.F" or ".F" seconds, digits only, at most millisecond
 *   precision (further fraction digits are truncated), capped at ROBOTS_MAX_CRAWL_DELAY_MS. An
 *   invalid value ("-1", "1s", "1e3", "") is ignored. Several valid values in the chosen group(s):
 *   the largest. A "*" group's value does not carry over to a matched token group.
 *
 * Bounds are the ROBOTS_MAX_* values below. */
#ifndef FETCHD_ROBOTS_H
#define FETCHD_ROBOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROBOTS_MAX_BYTES (500u * 1024u)  /* body bytes parsed (after the BOM); the rest is ignored */
#define ROBOTS_MAX_RULES 10000u          /* rules kept for the chosen group(s), first in file order */
#define ROBOTS_MAX_CRAWL_DELAY_MS 60000  /* a larger Crawl-delay is capped to this */
#define ROBOTS_MAX_TARGET_BYTES 8192u    /* decoded target octets examined (fetchd's
                                            max_url_bytes); see robots_allowed */
#define ROBOTS_MAX_PATTERN_BYTES ROBOTS_MAX_TARGET_BYTES /* longest kept pattern, decoded octets */
#define ROBOTS_MAX_TOKEN_BYTES 64u       /* longest valid product token */

struct robots; /* opaque; one allocation, freed by robots_free */

/* A product token as RFC 9309 2.2.1 defines it: 1..ROBOTS_MAX_TOKEN_BYTES letters, '-' and '_'.
 * For checking configuration; robots_parse treats an invalid token as matching no group but "*". */
bool robots_token_valid(const char *token);

/* Parse len bytes (txt may be NULL when len is 0; NUL bytes are ordinary octets) for the crawler
 * named product_token (not NULL). Reads at most ROBOTS_MAX_BYTES, keeps at most ROBOTS_MAX_RULES
 * rules. Memory held (robots_memory_bytes) is below 2 * len + 16 * rules + 64 bytes, so at most
 * about 1.2 MiB. Returns NULL only when out of memory. */
struct robots *robots_parse(const char *txt, size_t len, const char *product_token);

struct robots *robots_allow_all(void);    /* e.g. robots.txt was 4xx (RFC 9309 2.3.1.3) */
struct robots *robots_disallow_all(void); /* e.g. 5xx or unreachable (RFC 9309 2.3.1.4) */

/* May the request target (path + query exactly as sent, e.g. "/a/b?c=d") be fetched? An empty
 * target means "/"; one that does not start with '/' ("?x") is read with "/" before it, as
 * url.h's callers send it. "/robots.txt" (also "/robots%2Etxt") is always allowed. Only the first
 * ROBOTS_MAX_TARGET_BYTES octets of the decoded target are examined; for a longer target,
 * '$'-anchored rules do not match (its end is unknown) and other rules match on that prefix.
 * target may be NULL when target_len is 0. Uses about ROBOTS_MAX_TARGET_BYTES of stack. */
bool robots_allowed(const struct robots *r, const char *target, size_t target_len);

/* Crawl-delay of the chosen group(s) in milliseconds, 0..ROBOTS_MAX_CRAWL_DELAY_MS, or -1 when
 * absent or invalid (always -1 for robots_allow_all and robots_disallow_all). */
int64_t robots_crawl_delay_ms(const struct robots *r);

/* Bytes of the allocation held (struct, rules and patterns), for memory accounting. */
size_t robots_memory_bytes(const struct robots *r);

/* Number of rules kept (for tests and statistics). */
size_t robots_rule_count(const struct robots *r);

void robots_free(struct robots *r); /* NULL is fine */

#endif
