// Lint: typescript-eslint's recommended rules, plus one rule that keeps the wall clock,
// timers and randomness inside src/runtime/ so everything else runs on an injected clock.
import tseslint from 'typescript-eslint';

const clockRule = [
  'error',
  { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'Use the injected Clock (src/runtime/clock.ts), not Date.now().' },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Use the injected Clock (src/runtime/clock.ts), not new Date().' },
  { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'Use the injected Random (src/runtime/random.ts), not Math.random().' },
  { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: 'Use clock.monotonic().' },
  { selector: "CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate)$/]", message: 'Use the injected Clock for timers.' },
];

// Layering: each room of src/ may import only rooms on a lower floor (arrows point down, no
// cycles). A room's rank is its floor; importing a room of the same or a higher floor fails lint.
const floors = {
  cli: 9, agent: 8, audit: 7, mesh: 6, enforce: 6, alerts: 5, node: 5, store: 4, trust: 4, policy: 3, runtime: 2, wire: 1,
};
const layerRules = Object.entries(floors).map(([room, floor]) => ({
  files: [`src/${room}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: Object.entries(floors)
        .filter(([other, f]) => other !== room && f >= floor)
        .map(([other, f]) => ({
          group: [`../${other}/*`, `../../${other}/*`],
          message: `src/${room} (floor ${floor}) may not import src/${other} (floor ${f}): arrows point down (see docs/architecture.md).`,
        })),
    }],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'src/gen/**', 'node_modules/**', 'coverage/**', 'bench-out/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['src/**/*.ts'], ignores: ['src/runtime/**'], rules: { 'no-restricted-syntax': clockRule } },
  ...layerRules,
);
