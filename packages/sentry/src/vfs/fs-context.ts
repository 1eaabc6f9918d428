/**
 * The file system context of a task (Linux's struct fs_struct): the root, the current working
 * directory, as canonical sandbox paths, and the umask. Threads share one; fork copies it.
 */
export class FsContext {
  constructor(
    /** The sandbox root; chroot is not implemented, so it is always "/". */
    public root = '/',
    /** Canonical absolute path of the working directory, without a trailing slash except for "/". */
    public cwd = '/',
    /** File mode bits that file creation clears (umask(2)); Linux starts init with 022. */
    public umask = 0o022,
  ) {}

  clone(): FsContext {
    return new FsContext(this.root, this.cwd, this.umask);
  }
}
