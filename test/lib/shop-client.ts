// What the checkout suites do as customers and as the admin, through the gateway: one client for
// the embedded suite (tokens signed by the stack) and the services-mode suite (tokens from signIn).
import { randomUUID } from 'node:crypto';
import { SEED_ADMIN } from '@shop/seed';
import { type GraphQLClient, type GraphQLResponse, bearer, graphqlClient } from '@shop/testing';

export interface StockLevels {
  quantityAvailable: number;
  quantityOnHand: number;
  quantityReserved: number;
}

export class ShopClient {
  readonly client: GraphQLClient;
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    gatewayUrl: string,
    /** An access token for a user: each user's is asked for once and reused. */
    private readonly issue: (userId: string) => Promise<string>,
  ) {
    this.client = graphqlClient(gatewayUrl);
  }

  token(userId: string): Promise<string> {
    let token = this.tokens.get(userId);
    if (!token) this.tokens.set(userId, (token = this.issue(userId)));
    return token;
  }

  async try<T>(userId: string, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse<T>> {
    return this.client.query<T>(query, variables, bearer(await this.token(userId)));
  }

  /** Runs an operation as `userId`; any error fails the test with its message. */
  async as<T>(userId: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await this.try<T>(userId, query, variables);
    if (res.errors?.length) throw new Error(`${userId}: ${JSON.stringify(res.errors)}`);
    return res.data as T;
  }

  async setStock(productId: string, quantity: number): Promise<void> {
    await this.as(SEED_ADMIN.id, 'mutation ($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q) { id } }', {
      p: productId,
      q: quantity,
    });
  }

  async stock(productId: string): Promise<StockLevels> {
    const data = await this.as<{ product: StockLevels }>(
      SEED_ADMIN.id,
      'query ($p: ID!) { product(id: $p) { quantityAvailable quantityOnHand quantityReserved } }',
      { p: productId },
    );
    return data.product;
  }

  /** A draft order of `userId` with these lines; its id (the one createOrder gave, carrying the customer's slot). */
  async order(userId: string, lines: ReadonlyArray<readonly [string, number]>): Promise<string> {
    const { createOrder } = await this.as<{ createOrder: { id: string } }>(userId, 'mutation ($key: ID) { createOrder(id: $key) { id } }', {
      key: `co-${randomUUID()}`,
    });
    const id = createOrder.id;
    for (const [productId, quantity] of lines) {
      await this.as(userId, 'mutation ($id: ID!, $p: ID!, $q: Int!) { addOrderLine(orderId: $id, productId: $p, quantity: $q) { id } }', {
        id,
        p: productId,
        q: quantity,
      });
    }
    return id;
  }
}
