// Hardhat Network as `hardhat node` serves it: the second node implementation the demo is tested on
// (tests/test_demo.py), besides anvil. Nothing is compiled here; only the node is configured, like
// the managed anvil: chain id 31337, the Prague hardfork the contracts are compiled for.
module.exports = {
  networks: {
    hardhat: { chainId: 31337, hardfork: "prague" },
  },
};
