/** How much seed data to generate. Every service must be given the same sizes. */
export interface SeedSizes {
  /** @default 1000 */
  users: number;
  /** @default 1000 */
  products: number;
  /** @default 10000 */
  reviews: number;
}

export const defaultSeedSizes: SeedSizes = { users: 1000, products: 1000, reviews: 10000 };

/** mulberry32: a tiny, fast, well-distributed PRNG; the same seed always gives the same data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');
export const userId = (i: number) => `u${pad(i, 5)}`;
export const productId = (i: number) => `p${pad(i, 5)}`;
export const reviewId = (i: number) => `r${pad(i, 6)}`;

const EPOCH = Date.UTC(2024, 0, 1);
const at = (minutes: number) => new Date(EPOCH + minutes * 60_000).toISOString();

const FIRST = [
  'Ada',
  'Alan',
  'Grace',
  'Edsger',
  'Barbara',
  'Donald',
  'Frances',
  'Ken',
  'Margaret',
  'Dennis',
  'Radia',
  'Tim',
  'Sophie',
  'Linus',
  'Hedy',
  'John',
];
const LAST = [
  'Lovelace',
  'Turing',
  'Hopper',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Thompson',
  'Hamilton',
  'Ritchie',
  'Perlman',
  'Berners-Lee',
  'Wilson',
  'Torvalds',
  'Lamarr',
  'McCarthy',
];
const ADJECTIVES = ['Compact', 'Rugged', 'Silent', 'Smart', 'Classic', 'Ultra', 'Eco', 'Pro', 'Mini', 'Deluxe', 'Travel', 'Studio'];
const NOUNS: Record<string, string[]> = {
  electronics: ['Headphones', 'Speaker', 'Camera', 'Monitor', 'Keyboard', 'Router'],
  home: ['Kettle', 'Lamp', 'Blender', 'Chair', 'Rug', 'Toaster'],
  outdoors: ['Tent', 'Backpack', 'Lantern', 'Hammock', 'Stove', 'Bottle'],
  books: ['Novel', 'Cookbook', 'Atlas', 'Anthology', 'Guide', 'Journal'],
  toys: ['Puzzle', 'Kite', 'Robot', 'Blocks', 'Train', 'Yo-yo'],
};
export const CATEGORIES = Object.keys(NOUNS);
const PHRASES = [
  'Works as described.',
  'Great value for the price.',
  'Arrived late but works.',
  'Would buy again.',
  'Not what I expected.',
  'Solid build quality.',
  'Battery life could be better.',
  'My kids love it.',
  'Returned it after a week.',
  'Five stars, no notes.',
];

function pick<T>(items: readonly T[], r: number): T {
  return items[Math.floor(r * items.length) % items.length] as T;
}

export interface SeedUser {
  id: string;
  name: string;
  email: string;
  createdAt: string;
}

export function* seedUsers(sizes: SeedSizes): Generator<SeedUser> {
  const rand = prng(1);
  for (let i = 1; i <= sizes.users; i++) {
    const first = pick(FIRST, rand());
    const last = pick(LAST, rand());
    yield { id: userId(i), name: `${first} ${last}`, email: `${first}.${last}.${i}@example.com`.toLowerCase(), createdAt: at(i) };
  }
}

/**
 * The development admin: accounts adds it beside the generated users whenever it seeds (also to a
 * store seeded before it existed), with the role `admin` (every scope) and the development
 * password. Not one of `seedUsers`: the generated users keep their ids, emails and count, and no
 * other service knows this user (it has no reviews and is no orders customer).
 */
export const SEED_ADMIN: SeedUser = {
  id: 'admin',
  name: 'Shop Admin',
  email: 'admin@example.com',
  createdAt: at(0),
};

export interface SeedProduct {
  id: string;
  name: string;
  description: string;
  /** Integer cents. */
  price: number;
  /** Grams. */
  weight: number;
  category: string;
  createdAt: string;
}

export function* seedProducts(sizes: SeedSizes): Generator<SeedProduct> {
  const rand = prng(2);
  for (let i = 1; i <= sizes.products; i++) {
    const category = pick(CATEGORIES, rand());
    const name = `${pick(ADJECTIVES, rand())} ${pick(NOUNS[category] ?? ['Thing'], rand())} ${i}`;
    // Prices from $1 to about $2,000, most of them cheap.
    const price = 100 + Math.floor(rand() ** 3 * 200_000);
    const weight = 50 + Math.floor(rand() * 20_000);
    yield {
      id: productId(i),
      name,
      description: `The ${name.toLowerCase()}, a fine piece of ${category}.`,
      price,
      weight,
      category,
      createdAt: at(i),
    };
  }
}

export interface SeedReview {
  id: string;
  authorId: string;
  productId: string;
  body: string;
  rating: number;
  createdAt: string;
}

/**
 * Reviews with a skewed distribution: the product index is `products * r^3`, so the first 10% of
 * products get about half of all reviews and product 1 alone about one in ten. That skew is what
 * makes N+1 lookups visible.
 */
export function* seedReviews(sizes: SeedSizes): Generator<SeedReview> {
  if (sizes.users === 0 || sizes.products === 0) return;
  const rand = prng(3);
  for (let i = 1; i <= sizes.reviews; i++) {
    const product = 1 + Math.floor(rand() ** 3 * sizes.products);
    const author = 1 + Math.floor(rand() ** 2 * sizes.users);
    const rating = 1 + Math.floor(rand() ** 0.5 * 5);
    yield {
      id: reviewId(i),
      authorId: userId(Math.min(author, sizes.users)),
      productId: productId(Math.min(product, sizes.products)),
      body: `${pick(PHRASES, rand())} ${pick(PHRASES, rand())}`,
      rating: Math.min(rating, 5),
      createdAt: at(10_000 + i),
    };
  }
}

export interface SeedStock {
  productId: string;
  quantity: number;
}

/** Stock per product; about one product in eight is out of stock. */
export function* seedStock(sizes: SeedSizes): Generator<SeedStock> {
  const rand = prng(4);
  for (let i = 1; i <= sizes.products; i++) {
    const r = rand();
    yield { productId: productId(i), quantity: r < 0.125 ? 0 : Math.floor(r * 500) };
  }
}

/** Splits an iterable into arrays of at most `size` items (for batched inserts). */
export function* chunks<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let chunk: T[] = [];
  for (const item of items) {
    chunk.push(item);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}
