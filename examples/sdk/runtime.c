/* The nestvm guest runtime: start-up, exit, console output with
 * formatting, time, a bump allocator and the mem and str functions the
 * compiler expects. Compiled with -fno-tree-loop-distribute-patterns so the
 * byte loops below are not turned into calls to themselves. */
#include "nestvm.h"

static const struct nv_start_info *start_info;
static uintptr_t heap_next, heap_end;

int main(int argc, char **argv);

__attribute__((noreturn, used)) void nv__start(const struct nv_start_info *si)
{
	if (si == NULL || si->magic != NV_START_MAGIC)
		__builtin_trap(); /* not started by nestvm: nothing to print with */
	start_info = si;
	heap_next = si->heap_base;
	heap_end = si->heap_base + si->heap_size;
	nv_exit(main((int)si->argc, (char **)(uintptr_t)si->argv));
}

const struct nv_start_info *nv_start_info(void) { return start_info; }
nv_handle_t nv_self_space(void) { return start_info->space; }
nv_handle_t nv_self_thread(void) { return start_info->thread; }
nv_handle_t nv_console(void) { return start_info->console; }
nv_handle_t nv_clock(void) { return start_info->clock; }

void nv_exit(int status)
{
	nv_thread_exit(start_info->thread, (uint64_t)(status & 0xff));
	for (;;)
		__builtin_trap(); /* thread_exit failed: die loudly */
}

int64_t nv_write(const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		size_t chunk = n - done;
		if (chunk > NV_MAX_BUFFER)
			chunk = NV_MAX_BUFFER;
		int64_t r = nv_console_write(start_info->console, NV_ADDR((const char *)buf + done), chunk);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (int64_t)done;
}

int nv_puts(const char *s)
{
	if (nv_write(s, strlen(s)) < 0 || nv_write("\n", 1) < 0)
		return -1;
	return 0;
}

/* A sink the formatter writes to: a buffer, flushed to the console when
 * full if console is set. */
struct sink {
	char *buf;
	size_t cap, len, total;
	int console;
};

static void put(struct sink *s, char c)
{
	if (s->console && s->len == s->cap) {
		nv_write(s->buf, s->len);
		s->len = 0;
	}
	if (s->len < s->cap)
		s->buf[s->len++] = c;
	s->total++;
}

static void put_padded(struct sink *s, const char *p, size_t n, int width, int left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;
	if (!left)
		while (fill-- > 0)
			put(s, pad);
	for (size_t i = 0; i < n; i++)
		put(s, p[i]);
	if (left)
		while (fill-- > 0)
			put(s, ' ');
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(s, *fmt);
			continue;
		}
		fmt++;
		int left = 0, zero = 0, width = 0, prec = -1, lng = 0;
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				zero = 1;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == '.') {
			prec = 0;
			for (fmt++; *fmt >= '0' && *fmt <= '9'; fmt++)
				prec = prec * 10 + (*fmt - '0');
		}
		while (*fmt == 'l' || *fmt == 'z') {
			lng = 1;
			fmt++;
		}
		char tmp[24];
		size_t n = 0;
		uint64_t u;
		int neg = 0, base = 10, upper = 0;
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			neg = v < 0;
			u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			goto number;
		}
		case 'u':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			goto number;
		case 'X':
			upper = 1;
			/* fall through */
		case 'x':
			base = 16;
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			goto number;
		case 'p':
			base = 16;
			u = (uint64_t)(uintptr_t)va_arg(ap, void *);
			put(s, '0');
			put(s, 'x');
			goto number;
		number:
			do {
				unsigned d = (unsigned)(u % (unsigned)base);
				tmp[sizeof tmp - 1 - n++] = (char)(d < 10 ? '0' + d : (upper ? 'A' : 'a') + d - 10);
				u /= (unsigned)base;
			} while (u);
			if (neg) {
				if (zero && !left) {
					put(s, '-');
					width--;
				} else {
					tmp[sizeof tmp - 1 - n++] = '-';
				}
			}
			put_padded(s, tmp + sizeof tmp - n, n, width, left, zero && !left ? '0' : ' ');
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (str == NULL)
				str = "(null)";
			size_t len = 0;
			while (str[len] && (prec < 0 || len < (size_t)prec))
				len++;
			put_padded(s, str, len, width, left, ' ');
			break;
		}
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			put_padded(s, tmp, 1, width, left, ' ');
			break;
		case '%':
			put(s, '%');
			break;
		case '\0':
			return;
		default:
			put(s, '%');
			put(s, *fmt);
		}
	}
}

int nv_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct sink s = {buf, n ? n - 1 : 0, 0, 0, 0};
	format(&s, fmt, ap);
	if (n)
		buf[s.len] = '\0';
	return (int)s.total;
}

int nv_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = nv_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

int nv_vprintf(const char *fmt, va_list ap)
{
	char buf[256];
	struct sink s = {buf, sizeof buf, 0, 0, 1};
	format(&s, fmt, ap);
	if (s.len)
		nv_write(buf, s.len);
	return (int)s.total;
}

int nv_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = nv_vprintf(fmt, ap);
	va_end(ap);
	return r;
}

void nv_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	nv_vprintf(fmt, ap);
	va_end(ap);
	nv_write("\n", 1);
	nv_exit(127);
}

uint64_t nv_now_ns(void)
{
	int64_t t = nv_clock_read(start_info->clock, NV_CLOCK_MONOTONIC);
	return t < 0 ? 0 : (uint64_t)t;
}

void *nv_alloc(size_t n)
{
	uintptr_t p = (heap_next + 15) & ~(uintptr_t)15;
	if (p < heap_next || n > heap_end - p || p > heap_end)
		return NULL;
	heap_next = p + n;
	return (void *)p;
}

size_t nv_heap_remaining(void) { return heap_end - heap_next; }

uint64_t nv_atou64(const char *s, int *ok)
{
	uint64_t v = 0;
	int base = 10, any = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * (uint64_t)base + (uint64_t)d;
		any = 1;
	}
	if (ok)
		*ok = any && *s == '\0';
	return v;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}
