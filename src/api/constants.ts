export const GROUP = 'vaultsync.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const VAULTSECRET_KIND = 'VaultSecret';
export const VAULTSECRET_PLURAL = 'vaultsecrets';
export const VAULTCONNECTION_KIND = 'VaultConnection';
export const VAULTCONNECTION_PLURAL = 'vaultconnections';
