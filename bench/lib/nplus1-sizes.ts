/** The list sizes of the N+1 table. */
export const NPLUS1_SIZES = [5, 50, 500];
