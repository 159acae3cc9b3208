#include "textflag.h"

// func ppoll(fds *unix.PollFd, nfds uintptr, ts *unix.Timespec) (errno uintptr)
// ppoll(2) with no signal mask.
TEXT ·ppoll(SB), NOSPLIT, $0-32
	MOVQ	fds+0(FP), DI
	MOVQ	nfds+8(FP), SI
	MOVQ	ts+16(FP), DX
	XORL	R10, R10
	XORL	R8, R8
	MOVL	$271, AX // SYS_ppoll
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	AX, errno+24(FP)
	RET
ok:
	MOVQ	$0, errno+24(FP)
	RET
