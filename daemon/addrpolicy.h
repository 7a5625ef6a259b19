/* addrpolicy.h - which addresses fetchd may connect to (the guard against server-side request
 * forgery), pure: the operator's allow and deny lists ([security] allow_addresses, deny_addresses)
 * over a built-in list of special-purpose ranges (loopback, private, link-local, the cloud metadata
 * address, ...). Every answer comes with a reason fit for an error message. No I/O, no allocation,
 * no logging. */
#ifndef FETCHD_ADDRPOLICY_H
#define FETCHD_ADDRPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conf/cidr.h"

#define ADDRPOLICY_MAX CIDR_LIST_MAX /* most entries in each list (64) */
#define ADDRPOLICY_WHY_MAX 192       /* room for any reason addrpolicy_allowed gives */
#define ADDRPOLICY_ADDR_MAX 46       /* INET6_ADDRSTRLEN: room for addrpolicy_format */

/* A zeroed struct is the default policy: empty lists, built-in ranges blocked. */
struct addrpolicy {
	struct cidr allow[ADDRPOLICY_MAX];
	struct cidr deny[ADDRPOLICY_MAX];
	size_t nallow, ndeny;
};

/* Build p from the two comma-separated lists ("127.0.0.0/8, ::1/128"; NULL or "" is empty). Entries
 * are as cidr_parse takes them: a bare address is /32 or /128; host bits past the prefix are cleared
 * ("10.1.2.3/8" means 10.0.0.0/8; the entry's .masked is set so a caller may warn). An IPv6 entry
 * inside ::ffff:0:0/96 with a prefix of at least 96 is stored as the IPv4 range it maps
 * (::ffff:127.0.0.0/104 becomes 127.0.0.0/8). Returns 0, or -1 with p zeroed (the default policy)
 * and err naming the list and the entry ("invalid deny_addresses entry '10.0.0.0/33': prefix length
 * above 32 for IPv4"). */
int addrpolicy_parse(struct addrpolicy *p, const char *allow_csv, const char *deny_csv, char *err,
		     size_t errlen);

/* May fetchd connect to sa (AF_INET or AF_INET6; the port and scope id are ignored)? In order:
 * in deny_addresses: no; in allow_addresses: yes; in a built-in range: no; otherwise yes. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as the IPv4 address it carries, by IPv4
 * entries and the IPv4 built-ins; an IPv6 deny entry that covers it ("::/0") blocks it as well, but
 * an IPv6 allow entry never opens it. Other families are refused. When the answer is false and why
 * is not NULL, why gets the reason: "127.0.0.1 is loopback (127.0.0.0/8)", "10.1.2.3 is denied by
 * deny_addresses (10.0.0.0/8)", "::ffff:127.0.0.1 is IPv4-mapped 127.0.0.1, which is loopback
 * (127.0.0.0/8)"; when true, why is "". */
bool addrpolicy_allowed(const struct addrpolicy *p, const struct sockaddr *sa, char *why, size_t whylen);

/* Print the address of sa (no port) as inet_ntop does: "10.1.2.3", "::ffff:127.0.0.1". Returns 0, or
 * -1 for another family or a buffer too small (ADDRPOLICY_ADDR_MAX always fits). */
int addrpolicy_format(const struct sockaddr *sa, char *buf, size_t buflen);

#endif
