/* The nestvm guest runtime: start-up, exit, console output with
 * formatting (to the console or any handle like it), error names, time, a
 * bump allocator and the mem and str functions the compiler expects.
 * Compiled with -fno-tree-loop-distribute-patterns so the byte loops below
 * are not turned into calls to themselves. */
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

/* has_field says whether the monitor's start information is long enough to
 * hold the field at offset off: records only grow at the end, and an older
 * monitor writes a shorter one. */
static int has_field(size_t off)
{
	return start_info->size >= off + sizeof(uint64_t);
}

nv_handle_t nv_stderr(void)
{
	if (has_field(offsetof(struct nv_start_info, stderr)) && start_info->stderr != NV_NO_HANDLE)
		return start_info->stderr;
	return start_info->console;
}

nv_handle_t nv_files(void)
{
	if (has_field(offsetof(struct nv_start_info, files)))
		return start_info->files;
	return NV_NO_HANDLE;
}

nv_handle_t nv_stdin(void)
{
	if (has_field(offsetof(struct nv_start_info, stdin)))
		return start_info->stdin;
	return NV_NO_HANDLE;
}

void nv_exit(int status)
{
	/* The whole program ends, whatever other threads it started. */
	nv_space_kill(start_info->space, (uint64_t)(status & 0xff));
	nv_thread_exit(start_info->thread, (uint64_t)(status & 0xff));
	for (;;)
		__builtin_trap(); /* thread_exit failed: die loudly */
}

int64_t nv_write(const void *buf, size_t n)
{
	return nv_hwrite(start_info->console, buf, n);
}

int64_t nv_hwrite(nv_handle_t h, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		size_t chunk = n - done;
		if (chunk > NV_MAX_BUFFER)
			chunk = NV_MAX_BUFFER;
		int64_t r = nv_console_write(h, NV_ADDR((const char *)buf + done), chunk);
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

/* A sink the formatter writes to: a buffer, flushed to the handle out
 * when full if out is not NV_NO_HANDLE. */
struct sink {
	char *buf;
	size_t cap, len, total;
	nv_handle_t out;
};

static void put(struct sink *s, char c)
{
	if (s->out != NV_NO_HANDLE && s->len == s->cap) {
		nv_hwrite(s->out, s->buf, s->len);
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
	struct sink s = {buf, n ? n - 1 : 0, 0, 0, NV_NO_HANDLE};
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

int nv_vfprintf(nv_handle_t h, const char *fmt, va_list ap)
{
	char buf[256];
	struct sink s = {buf, sizeof buf, 0, 0, h};
	format(&s, fmt, ap);
	if (s.len)
		nv_hwrite(h, buf, s.len);
	return (int)s.total;
}

int nv_fprintf(nv_handle_t h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = nv_vfprintf(h, fmt, ap);
	va_end(ap);
	return r;
}

int nv_vprintf(const char *fmt, va_list ap)
{
	return nv_vfprintf(start_info->console, fmt, ap);
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

/* The words abi/errors.go gives each code, in the same order. */
static const char *const error_names[NV_ERR_COUNT] = {
	[NV_OK] = "ok",
	[NV_EINVALOP] = "invalid operation",
	[NV_EBADHANDLE] = "bad handle",
	[NV_ERIGHTS] = "insufficient rights",
	[NV_EINVAL] = "invalid argument",
	[NV_EFAULT] = "bad address",
	[NV_ENOMEM] = "out of memory",
	[NV_EQUOTA] = "quota exceeded",
	[NV_ETOOBIG] = "too big",
	[NV_EWRONGTYPE] = "wrong object type",
	[NV_EPEERGONE] = "peer gone",
	[NV_EDENIED] = "denied",
	[NV_ENOTFOUND] = "not found",
	[NV_EEXISTS] = "already exists",
	[NV_EIO] = "i/o error",
	[NV_EWOULDBLOCK] = "would block",
	[NV_EBUSY] = "busy",
	[NV_ETIMEOUT] = "timed out",
	[NV_ENOTEMPTY] = "directory not empty",
	[NV_ENOTDIR] = "not a directory",
	[NV_EISDIR] = "is a directory",
	[NV_ELOOP] = "too many symbolic links",
	[NV_EXDEV] = "cross-device link",
	[NV_ENOSPC] = "no space left",
};

const char *nv_strerror(int64_t err)
{
	if (err < 0)
		err = -err;
	if (err >= NV_ERR_COUNT || error_names[err] == NULL)
		return "unknown error";
	return error_names[err];
}

uint64_t nv_now_ns(void)
{
	int64_t t = nv_clock_read(start_info->clock, NV_CLOCK_MONOTONIC);
	return t < 0 ? 0 : (uint64_t)t;
}

int64_t nv_futex_wait_for(const volatile uint32_t *addr, uint32_t expected, uint64_t timeout_ns)
{
	nv_handle_t self = start_info->space;
	if (timeout_ns == 0)
		return nv_futex_wait(self, NV_ADDR(addr), expected, 0);
	int64_t now = nv_clock_read(start_info->clock, NV_CLOCK_MONOTONIC);
	if (now >= 0) {
		uint64_t deadline = (uint64_t)now + timeout_ns;
		if (deadline < (uint64_t)now)
			deadline = ~(uint64_t)0;
		int64_t r = nv_futex_wait_clock(self, NV_ADDR(addr), expected, start_info->clock, NV_CLOCK_MONOTONIC, deadline);
		/* A clock that cannot wait: a server that knows no clock_wait,
		 * or a policy that allows only clock_read. */
		if (r != -NV_EINVALOP && r != -NV_EWRONGTYPE && r != -NV_ERIGHTS && r != -NV_EBADHANDLE && r != -NV_EDENIED)
			return r;
	}
	return nv_futex_wait(self, NV_ADDR(addr), expected, timeout_ns);
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
