/* The entry point of every guest. The monitor starts the first thread with
 * rdi = the address of struct nv_start_info and rsp at argc, as Linux lays
 * out a new process's stack (argc, argv..., NULL, envp NULL, auxv). */
	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	xor %ebp, %ebp		/* the outermost frame, for debuggers */
	and $-16, %rsp		/* the call below needs a 16-byte aligned stack */
	call nv__start
	ud2			/* nv__start never returns */
	.size _start, . - _start
/* The note that tells the monitor this program is written for nestvm's
 * ABI, not Linux's: owner "nestvm", type 1 (NV_NOTE_ABI), no descriptor. */
	.section .note.nestvm, "a", @note
	.balign 4
	.long 7			/* namesz: "nestvm" and its NUL */
	.long 0			/* descsz */
	.long 1			/* type */
	.asciz "nestvm"
	.balign 4
	.section .note.GNU-stack, "", @progbits
