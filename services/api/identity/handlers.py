"""Thin gRPC handlers for stratus.v1.Keypairs and stratus.v1.Tokens (admin only, by the policy)."""

from __future__ import annotations

from typing import Any

from services.api.handling import Ctx, bounded
from services.api.identity.keypairs import KeypairsManager
from services.api.identity.tokens import IssuedTokens
from stratus.v1 import keypairs_pb2, keypairs_pb2_grpc, tokens_pb2, tokens_pb2_grpc


@bounded
class TokensServicer(tokens_pb2_grpc.TokensServicer):
    def __init__(self, tokens: IssuedTokens) -> None:
        self.m = tokens

    async def CreateToken(self, request: tokens_pb2.CreateTokenRequest, context: Ctx) -> Any:
        return await self.m.create(request)

    async def RevokeToken(self, request: tokens_pb2.RevokeTokenRequest, context: Ctx) -> tokens_pb2.Token:
        return await self.m.revoke(request)

    async def ListTokens(self, request: tokens_pb2.ListTokensRequest, context: Ctx) -> Any:
        return await self.m.list(request)


@bounded
class KeypairsServicer(keypairs_pb2_grpc.KeypairsServicer):
    def __init__(self, keypairs: KeypairsManager) -> None:
        self.m = keypairs

    async def CreateKeypair(self, request: keypairs_pb2.CreateKeypairRequest, context: Ctx) -> Any:
        return await self.m.create(request.name, request.public_key)

    async def GetKeypair(self, request: keypairs_pb2.GetKeypairRequest, context: Ctx) -> Any:
        return await self.m.get(request.name)

    async def ListKeypairs(self, request: keypairs_pb2.ListKeypairsRequest, context: Ctx) -> Any:
        return await self.m.list(request)

    async def DeleteKeypair(self, request: keypairs_pb2.DeleteKeypairRequest, context: Ctx) -> Any:
        await self.m.delete(request.name)
        return keypairs_pb2.DeleteKeypairResponse()
