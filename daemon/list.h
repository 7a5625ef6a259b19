/* list.h - intrusive doubly linked lists (a struct link inside each element), O(1) insert and unlink. */
#ifndef FETCHD_LIST_H
#define FETCHD_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct link {
	struct link *prev, *next;
};

#define list_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void list_init(struct link *head) { head->prev = head->next = head; }
static inline bool list_empty(const struct link *head) { return head->next == head; }
/* A link that is in no list points to itself (after list_init or list_del). */
static inline bool list_linked(const struct link *l) { return l->next != l && l->next != NULL; }

static inline void list_add_tail(struct link *head, struct link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static inline void list_add_head(struct link *head, struct link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

static inline void list_del(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

static inline struct link *list_pop(struct link *head)
{
	if (list_empty(head))
		return NULL;
	struct link *l = head->next;
	list_del(l);
	return l;
}

#endif
