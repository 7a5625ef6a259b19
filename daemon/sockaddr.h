/* sockaddr.h - union sockaddr_any, the one socket address type the daemon passes around (IPv4 or
 * IPv6, the family in sa.sa_family), kept apart so that pure modules can use it without fetchd.h. */
#ifndef FETCHD_SOCKADDR_H
#define FETCHD_SOCKADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

#endif
