// A CommonJS consumer: both entries load with require(), error classes keep their names, and an
// exec through FakeCluster works. Prints one JSON line for the test.
const sdk = require('eks-forensics');
const errors = require('eks-forensics/errors');
const { FakeCluster } = require('eks-forensics/testing');

(async () => {
  const cluster = await FakeCluster.start();
  try {
    await cluster.addPod({
      name: 'p',
      containers: [
        {
          name: 'c',
          image: 'x',
          options: {
            commands: {
              echo: async (argv, io) => {
                io.stdout.write(`${argv.slice(1).join(' ')}\n`);
                return 0;
              },
            },
          },
        },
      ],
    });
    const kube = new sdk.KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
    });
    const s = await kube.exec({ namespace: 'default', pod: 'p', command: ['echo', 'hello', 'cjs'] });
    const chunks = [];
    for await (const c of s.stdout) chunks.push(c);
    const r = await s.result;
    let notFound;
    try {
      await kube.exec({ namespace: 'default', pod: 'missing', command: ['true'] });
    } catch (err) {
      notFound = {
        name: err.constructor.name,
        code: err.code,
        branded: err instanceof sdk.EksForensicsError,
      };
    }
    const errorClasses = Object.entries(errors)
      .filter(([, v]) => typeof v === 'function' && v.prototype instanceof Error)
      .map(([k, v]) => [k, v.name, instanceName(v)]);
    console.log(
      JSON.stringify({
        format: 'cjs',
        stdout: Buffer.concat(chunks).toString(),
        exitCode: r.exitCode,
        notFound,
        errorClasses,
        subpaths: Object.fromEntries(
          [
            'errors',
            'types',
            'schemas',
            'iam',
            'auth',
            'ephemeral',
            'codecs',
            'sink-kit',
            'testing',
            'fleet',
          ].map((p) => [p, Object.keys(require(`eks-forensics/${p}`)).length]),
        ),
      }),
    );
  } finally {
    await cluster.close();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});

/** The constructor name an instance reports (classes whose constructor needs more than a message: its prototype's). */
function instanceName(C) {
  try {
    return new C('x').constructor.name;
  } catch {
    return Object.create(C.prototype).constructor.name;
  }
}
