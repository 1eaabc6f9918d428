/** Imports every system call family so that each registers its calls in the table. */
import './dir.js';
import './fd.js';
import './info.js';
import './ioctl.js';
import './misc-fs.js';
import './mmap.js';
import './open.js';
import './priority.js';
import './process.js';
import './read-write.js';
import './sendfile.js';
import './signal.js';
import './socket.js';
import './stat.js';
import './time.js';
import './xattr.js';
