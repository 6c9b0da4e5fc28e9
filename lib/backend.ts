/** The backend, chosen once at import (SPEC section 6) and shared by every API module. */
import { withPackageErrors } from './kernel-errors';
import { load } from './loader';
import { allocateLargeOutputsWith } from './outputs';

export const loaded = load();
export const backend = withPackageErrors(loaded.backend);
allocateLargeOutputsWith(loaded.native);
