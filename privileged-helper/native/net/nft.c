/*
 * ai-sandbox-nft: applies nftables command batches for the helper through libnftables, one
 * long-lived process so a sandbox's egress rules cost one netlink transaction (well under a
 * millisecond) instead of an `nft` process start on the sandbox's start path.
 *
 * Protocol on stdin/stdout (little endian): request  = u32 length, u8 flags (1: JSON output), text;
 * reply = u32 status (0 ok, else 1), u32 length, text (the command's output, or libnftables' error).
 * A batch is atomic: libnftables runs it as one transaction, all or nothing.
 *
 * Threat model: only the helper (root) talks to this process, over a pipe it created; the commands
 * are built by the helper from validated numbers and addresses, never from client strings.
 */
#include <nftables/libnftables.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REQUEST (4u << 20)

static int read_full(void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = read(0, (char *)buf + off, n - off);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int write_full(const void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = write(1, (const char *)buf + off, n - off);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

int main(void)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx || nft_ctx_buffer_output(ctx) || nft_ctx_buffer_error(ctx)) {
		fprintf(stderr, "ai-sandbox-nft: cannot create a libnftables context\n");
		return 1;
	}
	for (;;) {
		uint32_t len;
		uint8_t flags;
		if (read_full(&len, 4) < 0)
			return 0; /* the helper closed the pipe */
		if (len > MAX_REQUEST || read_full(&flags, 1) < 0)
			return 1;
		char *text = malloc(len + 1);
		if (!text || read_full(text, len) < 0)
			return 1;
		text[len] = 0;
		nft_ctx_output_set_flags(ctx, (flags & 1) ? NFT_CTX_OUTPUT_JSON : 0);
		int rc = nft_run_cmd_from_buffer(ctx, text);
		free(text);
		const char *out = rc ? nft_ctx_get_error_buffer(ctx) : nft_ctx_get_output_buffer(ctx);
		uint32_t hdr[2] = { rc ? 1u : 0u, (uint32_t)(out ? strlen(out) : 0) };
		if (write_full(hdr, sizeof hdr) < 0 || (hdr[1] && write_full(out, hdr[1]) < 0))
			return 1;
		/* each get_*_buffer call rewinds its buffer; read the other one so it does not pile up */
		(void)(rc ? nft_ctx_get_output_buffer(ctx) : nft_ctx_get_error_buffer(ctx));
	}
}
