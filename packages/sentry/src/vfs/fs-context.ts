/**
 * The file system context of a task (Linux's struct fs_struct): the root and the current working
 * directory, as canonical sandbox paths. Threads share one; fork copies it.
 */
export class FsContext {
  constructor(
    /** The sandbox root; chroot is not implemented, so it is always "/". */
    public root = '/',
    /** Canonical absolute path of the working directory, without a trailing slash except for "/". */
    public cwd = '/',
  ) {}

  clone(): FsContext {
    return new FsContext(this.root, this.cwd);
  }
}
