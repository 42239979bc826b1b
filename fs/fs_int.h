/*
 * fs_int.h - declarations private to the scopeholdfs program that are not
 * part of the FUSE callbacks' interface in fs.h: the service-manager
 * readiness notification (notify.c).
 */
#ifndef SCOPEHOLD_FS_INT_H
#define SCOPEHOLD_FS_INT_H

/*
 * Send STATE ("READY=1", "STOPPING=1", "STATUS=...") to the service
 * manager named by $NOTIFY_SOCKET, as systemd's sd_notify(3) protocol
 * describes. 0 when sent or when $NOTIFY_SOCKET is unset (not run by a
 * service manager); -errno otherwise.
 */
int fs_notify(const char *state) __attribute__((warn_unused_result));

/*
 * When $NOTIFY_SOCKET is set: start a detached thread that waits until
 * MOUNTPOINT is answered by this daemon (a stat and a statfs through the
 * mount, which block until the request loop runs) and then sends READY=1.
 * Call after the mount and before the request loop. 0, or -errno when the
 * thread cannot start.
 */
int fs_notify_ready_when_serving(const char *mountpoint) __attribute__((warn_unused_result));

#endif
